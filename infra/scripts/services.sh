# Sourced by test.sh and bench.sh: checks the services the machine runs and
# starts an embedded FerretDB (MongoDB-compatible) when MONGODB_URL is unset.
# After it, MONGODB_URL is set and FERRET_PID names the server we started.

check_service() { # name host port how-to-start
	if ! (exec 3<>"/dev/tcp/$2/$3") 2>/dev/null; then
		echo "$1 is not reachable at $2:$3. Start it with: $4" >&2
		exit 1
	fi
}

check_services() {
	check_service PostgreSQL 127.0.0.1 5432 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
	check_service Redis 127.0.0.1 6379 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'
	check_service Mosquitto 127.0.0.1 1883 'mosquitto -d -c /etc/mosquitto/mosquitto.conf'
}

start_ferretdb() { # repo root
	FERRET_PID=""
	[ -n "${MONGODB_URL:-}" ] && return 0
	ferret_dir=$(mktemp -d)
	trap 'kill $FERRET_PID 2>/dev/null || true; wait $FERRET_PID 2>/dev/null || true; rm -rf "$ferret_dir"' EXIT
	echo "starting embedded FerretDB (MongoDB-compatible; set MONGODB_URL to use another server)"
	(cd "$1/infra" && go build -o "$ferret_dir/ferretdb" ./cmd/ferretdb)
	local port=$((27100 + RANDOM % 800))
	"$ferret_dir/ferretdb" -addr "127.0.0.1:$port" -dir "$ferret_dir/data" >"$ferret_dir/ferretdb.log" 2>&1 &
	FERRET_PID=$!
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
		kill -0 $FERRET_PID 2>/dev/null || { cat "$ferret_dir/ferretdb.log" >&2; exit 1; }
		sleep 0.1
	done
	export MONGODB_URL="mongodb://127.0.0.1:$port/"
}

# apt_install PACKAGE WHY installs Debian's PACKAGE with apt-get (through
# sudo unless root, left in the array sudo for the caller's own commands),
# or exits saying what needed it.
apt_install() {
	echo "installing Debian's $1 package ($2)"
	sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	if ! { "${sudo[@]}" apt-get update -qq &&
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1"; }; then
		echo "could not install Debian's $1 package ($2)" >&2
		exit 1
	fi
}

# need_prometheus installs Debian's prometheus package when prometheus or
# promtool is missing: the metrics tests run `promtool check metrics`, the
# monitoring tests (infra/monitoring) promtool and a real Prometheus; they
# fail, never skip, without them. The package's own service
# (port 9090) is stopped and disabled where apt started one: the tests run
# their own instance on a spare port.
need_prometheus() {
	command -v prometheus >/dev/null && command -v promtool >/dev/null && return 0
	apt_install prometheus "prometheus and promtool, for the monitoring tests"
	if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
		"${sudo[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
	elif [ -x /etc/init.d/prometheus ]; then
		"${sudo[@]}" /etc/init.d/prometheus stop >/dev/null 2>&1 || true
	fi
}

# need_chromium installs Debian's chromium package when /usr/bin/chromium
# (or CHROMIUM) is missing: the console's browser test (infra/console)
# drives it with playwright-core; without a browser it fails under CI=true
# and is skipped elsewhere, so make test installs one first.
need_chromium() {
	[ -x "${CHROMIUM:-/usr/bin/chromium}" ] && return 0
	apt_install chromium "for the console's browser test"
}
