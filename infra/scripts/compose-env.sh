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
for name in MQTT_BROKER_SECRET MQTT_BRIDGE_PASSWORD EMQX_NODE_COOKIE EMQX_DASHBOARD_PASSWORD SIMULATOR_ADMIN_PASSWORD; do
	if grep -q "^${name}=" "$file"; then
		continue
	fi
	value=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
	printf '%s=%s\n' "$name" "$value" >>"$file"
	echo "compose-env: wrote a new $name into $file"
done

# The token key: the auth function's private half and the verifiers' public
# half are one pair, so both are written together or neither.
has() { grep -q "^$1=" "$file"; }
if has JWT_SIGNING_KEYS && has JWT_PUBLIC_KEYS; then
	exit 0
fi
if has JWT_SIGNING_KEYS || has JWT_PUBLIC_KEYS; then
	echo "compose-env: $file has only one of JWT_SIGNING_KEYS and JWT_PUBLIC_KEYS; remove it, or add its other half (make keys prints a new pair)" >&2
	exit 1
fi
if command -v go >/dev/null; then
	(cd infra && go run ./cmd/jwtkeys -kid compose) >>"$file"
elif command -v openssl >/dev/null; then
	# PKCS#8 and PKIX DER, base64: both forms the functions read.
	pem=$(openssl genpkey -algorithm ed25519)
	printf 'JWT_SIGNING_KEYS=compose:%s\n' "$(printf '%s\n' "$pem" | openssl pkey -outform DER | base64 -w0)" >>"$file"
	printf 'JWT_PUBLIC_KEYS=compose:%s\n' "$(printf '%s\n' "$pem" | openssl pkey -pubout -outform DER | base64 -w0)" >>"$file"
else
	echo "compose-env: generating the token key needs go or openssl; set JWT_SIGNING_KEYS and JWT_PUBLIC_KEYS in $file yourself" >&2
	exit 1
fi
echo "compose-env: wrote a new token key (JWT_SIGNING_KEYS, JWT_PUBLIC_KEYS) into $file"
