#!/usr/bin/env bash
# Benchmarks. Each reports a ratio against a reference measured in the same
# run, plus absolute figures. BENCH selects: readpaths, ingest, e2e,
# deadletters, deviceauth, tokencheck, metrics, alarms, export, silence, or all (default). The read-path data set (10 sensors x 1
# year at 1 reading/10 s, about 31.5 M rows) is built once in the database
# tempwatch_bench (about 15 minutes on 2 cores) and reused by later runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
. infra/scripts/services.sh
check_services
start_ferretdb "$PWD"
what=${BENCH:-all}

if [[ $what == all || $what == readpaths ]]; then
	echo "== read paths: daily averages vs GROUP BY, latest reading vs trivial handler, deep page vs first page"
	go test -run '^$' -bench ReadPaths -benchtime 1x -timeout 90m ./shared/readings/
fi
if [[ $what == all || $what == ingest ]]; then
	echo "== ingest batch (function code, in process) vs bare pgx CopyFrom of the same rows"
	go test -run '^$' -bench BenchmarkIngestBatch -benchtime 30x -timeout 30m ./shared/ingest/
fi
if [[ $what == all || $what == alarms ]]; then
	echo "== ingest with alarm evaluation and limit rollups vs before both: the batch handler in process, then the write alone (same run, sensors of their own)"
	go test -run '^$' -bench BenchmarkIngestWithAlarms -benchtime 120x ./shared/postgres/
	go test -run '^$' -bench BenchmarkAlarmEvaluation -benchtime 60x ./shared/postgres/
fi
if [[ $what == all || $what == e2e ]]; then
	echo "== end to end: devices publish (own credentials) -> embedded broker (mochi-mqtt, device authentication) -> bridge -> devstack -> ingest -> PostgreSQL vs bare CopyFrom and vs the broker alone"
	(cd infra && go run ./e2e/cmd/ingestbench -n "${BENCH_READINGS:-100000}" ${FERRET_PID:+-mongo-pid $FERRET_PID})
fi
if [[ $what == all || $what == deadletters ]]; then
	echo "== dead letters: a first page and an empty sweep vs finding one by id, by collection size"
	go test -run '^$' -bench BenchmarkDeadLetters -benchtime 5x -v -timeout 30m ./shared/mongo/ | grep -E 'ns/op|docs=.*raw=.*:'
fi
if [[ $what == all || $what == deviceauth ]]; then
	echo "== device authorization per message (PUBLISH check, delivery to the bridge) vs building the device's topic and comparing"
	go test -run '^$' -bench BenchmarkAllowed -count 3 ./shared/deviceauth/
fi
if [[ $what == all || $what == metrics ]]; then
	echo "== request metrics per request (recorded, written as the invocation's EMF line) vs the same handler without"
	go test -run '^$' -bench BenchmarkWrapMetrics -benchtime 50000x -count 5 ./shared/httpapi/
fi
if [[ $what == all || $what == export ]]; then
	echo "== CSV export of a sensor-year (3.15 M readings, built in a schema of its own) over HTTP vs PostgreSQL's COPY ... TO STDOUT WITH CSV of the same rows"
	go test -run '^$' -bench BenchmarkExportSensorYear -benchtime 1x -timeout 30m ./shared/export/ 2>&1 | grep -E 'export bench|rows/s'
fi
if [[ $what == all || $what == tokencheck ]]; then
	echo "== token check per request (user cutoff in memory, Redis, PostgreSQL) vs the signature and claims check alone"
	go test -run '^$' -bench BenchmarkTokenCheck -count 3 ./shared/app/ | grep x-ref
fi
if [[ $what == all || $what == silence ]]; then
	echo "== silence sweep over 100,000 sensors (1 % and 100 % silent: the opening sweep and the next) vs a full count of the same table"
	go test -run '^$' -bench BenchmarkSilenceSweep -benchtime 1x -v -timeout 30m ./shared/postgres/ | grep -E 'sensors=|ms|FAIL'
fi
