#!/usr/bin/env bash
# Runs the tests of both modules (make test: with the race detector).
#
#   test.sh        every test, with -race, against real services (make test). PostgreSQL,
#                  Redis and Mosquitto must already run (README, "Quick start");
#                  MongoDB is FerretDB, started here when MONGODB_URL is not set.
#                  A missing service fails the tests that need it.
#                  Installs Debian's prometheus package when prometheus or
#                  promtool is missing (the monitoring tests run both), and
#                  Debian's chromium when it is missing (the console's
#                  browser test, infra/console, drives it with playwright-core
#                  from shared/console's npm ci, which make test runs first).
#   test.sh unit   the fast tier (make test-unit): go test -short, under which
#                  the service helpers (pgtest, redistest, mongotest,
#                  mosquittotest, stacktest) skip their tests, so nothing here
#                  needs a service. Without the race detector, which costs
#                  more than the tests on two cores (every test binary links
#                  and runs about twice as long); make test runs the same
#                  tests with it, GOFLAGS=-race asks for it here. Results of
#                  unchanged packages come from go's test cache;
#                  GOFLAGS=-count=1 runs everything again.
#
# Both run the admin console's script tests (Node.js 20+, node --test). Each
# phase prints a line when it starts and ends, with the time since the start,
# and every 30 s what go is compiling, linking and running meanwhile, so a
# long compile or a slow package is never silent.
set -euo pipefail
cd "$(dirname "$0")/../.."
. infra/scripts/services.sh

tier=${1:-all}
case "$tier" in
all) goflags=(-race -count=1 -timeout 15m) ;;
unit) goflags=(-short) ;;
*)
	echo "usage: $0 [unit]" >&2
	exit 2
	;;
esac

# The race detector sleeps a second before a test binary exits (its
# atexit_sleep_ms, default 1000): a second of nothing for each of some 75
# test binaries.
export GORACE="${GORACE:-} atexit_sleep_ms=0"

start=$SECONDS
say() { printf 'test [%d:%02d] %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*"; }

# busy PID prints what the go command PID is doing: the packages its
# compilers are building, how many links run, the test binaries it runs.
busy() {
	local args compiling=() running=() links=0
	while read -r args; do
		case "$args" in
		*/compile\ *) compiling+=("$(sed -n 's/.* -p \([^ ]*\) .*/\1/p' <<<"$args")") ;;
		*/link\ *) links=$((links + 1)) ;;
		*.test | *.test\ *) running+=("$(basename "${args%% *}")") ;;
		esac
	done < <(ps -o args= --ppid "$1" 2>/dev/null || true)
	local out=()
	((${#compiling[@]})) && out+=("compiling ${compiling[*]}")
	((links)) && out+=("linking $links test binaries")
	((${#running[@]})) && out+=("running ${running[*]}")
	((${#out[@]})) || out+=("waiting on go")
	local IFS=';'
	echo "${out[*]}"
}

# gotest LABEL DIR [OUT] runs go test ./... in DIR, printing every 30 s what
# it is busy with; with OUT, go's output goes to that file. Its status is go's.
gotest() {
	local label=$1 dir=$2 out=${3:-}
	say "$label: go test ${goflags[*]} ./... (compiles first: progress every 30 s)"
	(
		cd "$dir"
		if [ -n "$out" ]; then exec >"$out" 2>&1; fi
		exec go test "${goflags[@]}" ./...
	) &
	local gopid=$!
	(
		# Waiting on a background sleep lets TERM end the watcher at once.
		trap 'kill $nap 2>/dev/null; exit 0' TERM
		while :; do
			sleep 30 &
			nap=$!
			wait $nap
			say "$label: $(busy "$gopid")"
		done
	) &
	local watcher=$!
	local rc=0
	wait "$gopid" || rc=$?
	kill "$watcher" 2>/dev/null || true
	wait "$watcher" 2>/dev/null || true
	say "$label: $([ $rc -eq 0 ] && echo ok || echo FAILED)"
	return $rc
}

if [ "$tier" = all ]; then
	say "checking PostgreSQL, Redis and Mosquitto"
	check_services
	need_prometheus
	need_chromium
	start_ferretdb "$PWD"
else
	say "fast tier: go test -short; tests that need PostgreSQL, Redis, Mosquitto or MongoDB are skipped"
fi

# Both modules run even when the first fails, so one run shows every failure.
# The fast tier runs them side by side (each waits on a few slow packages at
# its end) and prints the infra module's output after the product module's.
status=0
infra="infra module (devstack, gateway, deployment files)"
[ "$tier" = unit ] || infra="infra module (devstack, gateway, deployment files, end to end)"
if [ "$tier" = unit ]; then
	infra_log=$(mktemp)
	gotest "$infra" infra "$infra_log" &
	infra_job=$!
	gotest "product module" . || status=1
	wait "$infra_job" || status=1
	say "$infra: output"
	cat "$infra_log"
	rm -f "$infra_log"
else
	gotest "product module" . || status=1
	gotest "$infra" infra || status=1
fi
say "console script (node --test)"
if ! command -v node >/dev/null; then
	echo "test: node not found: the admin console's script tests (shared/console/*_test.mjs) need Node.js 20 or later" >&2
	status=1
elif ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
	echo "test: node $(node --version) is too old: the admin console's script tests need Node.js 20 or later" >&2
	status=1
else
	node --test --test-reporter=spec --test-timeout=60000 shared/console/*_test.mjs || status=1
fi
if [ $status -ne 0 ]; then
	say "FAILED" >&2
else
	say "all passed"
fi
exit $status
