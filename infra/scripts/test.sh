#!/usr/bin/env bash
# Runs every test of both modules with the race detector against real
# services. PostgreSQL, Redis and Mosquitto must already run (DESIGN.md);
# MongoDB is FerretDB, started here when MONGODB_URL is not set.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

check() { # name host port how-to-start
	if ! (exec 3<>"/dev/tcp/$2/$3") 2>/dev/null; then
		echo "test: $1 is not reachable at $2:$3. Start it with: $4" >&2
		exit 1
	fi
}
check PostgreSQL 127.0.0.1 5432 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
check Redis 127.0.0.1 6379 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'
check Mosquitto 127.0.0.1 1883 'mosquitto -d -c /etc/mosquitto/mosquitto.conf'

if [ -z "${MONGODB_URL:-}" ]; then
	dir=$(mktemp -d)
	trap 'kill $ferret_pid 2>/dev/null || true; wait $ferret_pid 2>/dev/null || true; rm -rf "$dir"' EXIT
	echo "test: starting embedded FerretDB (MongoDB-compatible) for the tests"
	(cd infra && go build -o "$dir/ferretdb" ./cmd/ferretdb)
	port=$((27100 + RANDOM % 800))
	"$dir/ferretdb" -addr "127.0.0.1:$port" -dir "$dir/data" >"$dir/ferretdb.log" 2>&1 &
	ferret_pid=$!
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
		kill -0 $ferret_pid 2>/dev/null || { cat "$dir/ferretdb.log" >&2; exit 1; }
		sleep 0.1
	done
	export MONGODB_URL="mongodb://127.0.0.1:$port/"
fi

export TEMPWATCH_REQUIRE_SERVICES=1
# Both modules run even when the first fails, so one run shows every failure.
status=0
echo "test: product module"
go test -race -count=1 -timeout 15m ./... || status=1
echo "test: infra module (devstack, gateway, deployment files, end to end)"
(cd infra && go test -race -count=1 -timeout 15m ./...) || status=1
if [ $status -ne 0 ]; then echo "test: FAILED" >&2; fi
exit $status
