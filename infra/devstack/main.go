// Command devstack runs tempwatch locally without Docker: the template's
// deploy steps first (functions/migrate migrates DATABASE_URL), then every
// other function of template.yaml as its real bootstrap behind an emulated
// Lambda Runtime API, the Lambda Invoke API, and the API Gateway routes. See
// package stack.
//
// Environment passed to the functions: DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/tempwatch?sslmode=disable, created if
// missing), REDIS_URL (default redis://127.0.0.1:6379/0), MQTT_URL and
// MONGODB_URL (embedded broker / FerretDB when unset), REDIS_PREFIX, LOG_LEVEL, JWT_*
// (a fresh JWT_SIGNING_KEYS/JWT_PUBLIC_KEYS pair when unset), MQTT_*
// (MQTT_BROKER_SECRET and MQTT_BRIDGE_PASSWORD random when unset) and
// TEMPWATCH_*. A variable template.yaml lists for some functions goes to
// those only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
)

func main() {
	var cfg stack.Config
	flag.StringVar(&cfg.APIAddr, "addr", envOr("DEVSTACK_ADDR", "127.0.0.1:3000"), "API Gateway listen address")
	flag.StringVar(&cfg.LambdaAddr, "lambda-addr", envOr("DEVSTACK_LAMBDA_ADDR", "127.0.0.1:3001"), "Lambda Invoke API listen address")
	flag.StringVar(&cfg.MetricsAddr, "metrics", envOr("DEVSTACK_METRICS_ADDR", "127.0.0.1:9464"), "address serving every function's metrics (all instances merged) at /metrics")
	flag.IntVar(&cfg.Instances, "instances", 2, "warm instances per function")
	flag.StringVar(&cfg.Root, "root", envOr("DEVSTACK_ROOT", "."), "repository root (holds template.yaml and functions/)")
	flag.StringVar(&cfg.MQTTAddr, "mqtt-addr", "127.0.0.1:1884", "embedded MQTT broker address, used when MQTT_URL is unset")
	flag.StringVar(&cfg.MongoAddr, "mongo-addr", "127.0.0.1:27017", "embedded FerretDB address, used when MONGODB_URL is unset")
	only := flag.String("only", "", "comma-separated functions to run (folder names or logical ids); default all")
	flag.BoolVar(&cfg.Bridge, "bridge", true, "run the MQTT bridge against the broker and the ingest function")
	flag.StringVar(&cfg.BridgeMetricsAddr, "bridge-metrics-addr", "127.0.0.1:8081", "bridge /healthz and /metrics address")
	flag.DurationVar(&cfg.ScheduleEvery, "schedule-every", 0, "run every Schedule event of the template at this interval instead of its rate (e.g. 10s); 0: at its rate")
	ephemeral := flag.Bool("ephemeral", false, "keep the embedded FerretDB's data in a temporary folder removed at shutdown, not in .devstack/")
	flag.Parse()
	cfg.FerretDir = ferretDir(cfg.Root, *ephemeral)
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	cfg.Env = functionEnv(os.Environ())

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
	var names []string
	for _, f := range s.Functions() {
		names = append(names, f.Name)
	}
	bridgeLine := "off"
	if s.BridgeRunning() {
		bridgeLine = "http://" + cfg.BridgeMetricsAddr + "/metrics (MQTT " + s.MQTTURL() + " -> ingest; restarted if it dies)"
	}
	var steps []string
	for _, f := range s.DeploySteps() {
		steps = append(steps, f.Name)
	}
	var schedules []string
	for _, r := range s.Schedules() {
		schedules = append(schedules, r.Function+" every "+r.Every.String())
	}
	fmt.Printf("tempwatch devstack ready\n  API:        %s\n  Console:    %s/console\n  Invoke API: %s\n  Metrics:    %s (every function, all instances)\n  MQTT:       %s\n  MongoDB:    %s\n  PostgreSQL: %s\n  Bridge:     %s\n  Functions:  %s\n  Schedules:  %s\n  Ran first:  %s\n",
		s.APIURL(), s.APIURL(), s.InvokeURL(), s.MetricsURL(), s.MQTTURL(), s.MongoDBURL(), s.DatabaseURL(), bridgeLine, strings.Join(names, ", "), strings.Join(schedules, ", "), strings.Join(steps, ", "))
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "devstack: shutting down")
	_ = s.Close() // the bridge first, so it flushes its open batch into the still-running functions
}

// functionEnv picks the variables of devstack's environment that functions get.
func functionEnv(environ []string) map[string]string {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "DATABASE_URL", k == "REDIS_URL", k == "REDIS_PREFIX", k == "MONGODB_URL", k == "LOG_LEVEL",
			strings.HasPrefix(k, "MQTT_"), strings.HasPrefix(k, "JWT_"), strings.HasPrefix(k, "TEMPWATCH_"):
			env[k] = v
		}
	}
	return env
}

// ferretDir is where the embedded FerretDB keeps its data: .devstack/ferretdb
// in the repository root, so dead letters and raw payloads outlive a run
// (.gitignore lists .devstack/), or, ephemeral, a temporary folder of the
// stack's ("").
func ferretDir(root string, ephemeral bool) string {
	if ephemeral {
		return ""
	}
	return filepath.Join(root, ".devstack", "ferretdb")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
