#!/usr/bin/env bash
# Runs every test of both modules with the race detector against real
# services. PostgreSQL, Redis and Mosquitto must already run (DESIGN.md);
# MongoDB is FerretDB, started here when MONGODB_URL is not set.
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
if [ $status -ne 0 ]; then echo "test: FAILED" >&2; fi
exit $status
