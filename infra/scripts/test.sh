#!/usr/bin/env bash
# Runs every test of both modules with the race detector against real
# services. PostgreSQL, Redis and Mosquitto must already run (README, "Quick start");
# MongoDB is FerretDB, started here when MONGODB_URL is not set. The admin
# console's script tests need Node.js 20+ (node --test).
set -euo pipefail
cd "$(dirname "$0")/../.."
. infra/scripts/services.sh
check_services
start_ferretdb "$PWD"

# Both modules run even when the first fails, so one run shows every failure.
status=0
echo "test: product module"
go test -race -count=1 -timeout 15m ./... || status=1
echo "test: infra module (devstack, gateway, deployment files, end to end)"
(cd infra && go test -race -count=1 -timeout 15m ./...) || status=1
echo "test: console script (node --test)"
if ! command -v node >/dev/null; then
	echo "test: node not found: the admin console's script tests (shared/console/*_test.mjs) need Node.js 20 or later" >&2
	status=1
elif ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
	echo "test: node $(node --version) is too old: the admin console's script tests need Node.js 20 or later" >&2
	status=1
else
	node --test --test-reporter=spec --test-timeout=60000 shared/console/*_test.mjs || status=1
fi
if [ $status -ne 0 ]; then echo "test: FAILED" >&2; fi
exit $status
