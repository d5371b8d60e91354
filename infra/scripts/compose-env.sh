#!/usr/bin/env bash
# Writes the secrets docker-compose.yml requires into .env (which compose
# reads), each a fresh random value, keeping every one already there. The
# file is readable by its owner only; it is never committed (.gitignore).
#
#   infra/scripts/compose-env.sh [ENV_FILE]     (default: .env at the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
file=${1:-.env}
touch "$file"
chmod 600 "$file"
if [ -s "$file" ] && [ -n "$(tail -c1 "$file")" ]; then
	echo >>"$file" # the last line had no newline: keep it a line of its own
fi
for name in MQTT_BROKER_SECRET MQTT_BRIDGE_PASSWORD EMQX_NODE_COOKIE EMQX_DASHBOARD_PASSWORD; do
	if grep -q "^${name}=" "$file"; then
		continue
	fi
	value=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
	printf '%s=%s\n' "$name" "$value" >>"$file"
	echo "compose-env: wrote a new $name into $file"
done
