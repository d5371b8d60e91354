// Command gateway is the API Gateway stand-in of docker-compose.yml: it reads
// template.yaml and forwards each route, as a REST API proxy event, to its
// function's container (the Lambda base image's runtime interface emulator).
//
// Environment:
//
//	GATEWAY_ADDR                   listen address (default :3000)
//	TEMPLATE_PATH                  SAM template (default template.yaml)
//	GATEWAY_STAGE                  stage in the request context (default v1)
//	GATEWAY_FUNCTION_URL_TEMPLATE  function base URL, {name} is the folder name
//	                               (default http://{name}:8080)
//	FUNCTION_URL_<NAME>            overrides one function's URL (NAME upper case,
//	                               '-' as '_'), e.g. FUNCTION_URL_CLIENTS
//	GATEWAY_TIMEOUT                per-invocation timeout, queueing included (default 29s)
//	GATEWAY_FUNCTION_CONCURRENCY   invocations sent to one function's container at
//	                               once (default 1: the emulator runs one at a time)
//	GATEWAY_QUEUE                  invocations of one function that wait for it
//	                               beyond those (default 100); more are refused, 503
//
// It also serves the Lambda Invoke API (POST /2015-03-31/functions/<name>/
// invocations) for every function of the template, so that direct invokers
// (the bridge) queue behind the same per-function limit as API requests.
// And it runs the template's Schedule events on their rates, as EventBridge
// would (package schedule), behind that limit too; a schedule it cannot
// run (a cron()) stops its start.
//
// `gateway -healthcheck` probes a running gateway's health endpoint and exits
// 0 or 1, for container healthchecks on an image without a shell.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tempwatch/tempwatch/infra/gateway/apigw"
	"github.com/tempwatch/tempwatch/infra/gateway/sam"
	"github.com/tempwatch/tempwatch/infra/gateway/schedule"
)

// healthPath answers the compose healthcheck; it sits outside the API's paths.
const healthPath = "/_gateway/healthz"

type config struct {
	Addr        string
	Template    string
	Stage       string
	URLTemplate string
	Timeout     time.Duration
	Concurrency int
	Queue       int
	getenv      func(string) string
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		Addr:        or(getenv("GATEWAY_ADDR"), ":3000"),
		Template:    or(getenv("TEMPLATE_PATH"), "template.yaml"),
		Stage:       or(getenv("GATEWAY_STAGE"), "v1"),
		URLTemplate: or(getenv("GATEWAY_FUNCTION_URL_TEMPLATE"), "http://{name}:8080"),
		Timeout:     29 * time.Second,
		Concurrency: 1,
		Queue:       100,
		getenv:      getenv,
	}
	if v := getenv("GATEWAY_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("GATEWAY_TIMEOUT: %q is not a positive duration", v)
		}
		c.Timeout = d
	}
	var err error
	if c.Concurrency, err = intVar(getenv, "GATEWAY_FUNCTION_CONCURRENCY", c.Concurrency, 1); err != nil {
		return c, err
	}
	if c.Queue, err = intVar(getenv, "GATEWAY_QUEUE", c.Queue, 0); err != nil {
		return c, err
	}
	return c, nil
}

func intVar(getenv func(string) string, name string, def, low int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < low {
		return 0, fmt.Errorf("%s: %q is not a whole number of at least %d", name, v, low)
	}
	return n, nil
}

// functionURL resolves a function's base URL: its own variable first, then the template.
func (c config) functionURL(name string) string {
	key := "FUNCTION_URL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if v := c.getenv(key); v != "" {
		return v
	}
	return strings.ReplaceAll(c.URLTemplate, "{name}", name)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-healthcheck" {
		os.Exit(healthcheck(os.Getenv))
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("gateway stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		return err
	}
	tpl, err := sam.Load(cfg.Template)
	if err != nil {
		return err
	}
	routes := tpl.Routes()
	for _, r := range routes {
		log.Info("route", "method", r.Method, "path", r.Path, "function", r.Function, "url", cfg.functionURL(r.Function))
	}
	limit := &apigw.Limiter{PerFunction: cfg.Concurrency, Queue: cfg.Queue}
	gw := &apigw.Gateway{
		Router:  apigw.NewRouter(routes),
		Invoker: apigw.HTTPInvoker{URL: cfg.functionURL, Client: &http.Client{}},
		Stage:   cfg.Stage,
		Log:     log,
		Timeout: cfg.Timeout,
		Limit:   limit,
	}
	// What EventBridge does on AWS: the template's schedules (the silence
	// sweep, the dead-letter expiry), through the same slots as the API's
	// invocations, since each emulator takes one at a time.
	runs, err := schedule.Plan(tpl.Schedules(), 0)
	if err != nil {
		return err
	}
	for _, r := range runs {
		log.Info("schedule", "function", r.Function, "event", r.Event, "expression", r.Expression, "every", r.Every.String())
	}
	sched := schedule.Start(runs, limitedInvoker{inv: gw.Invoker, limit: limit, timeout: cfg.Timeout}, func(format string, args ...any) {
		log.Warn(fmt.Sprintf(format, args...))
	})
	defer sched.Stop()
	names := make([]string, 0, len(tpl.Functions))
	for _, f := range tpl.Functions {
		names = append(names, f.Name)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+healthPath, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle(apigw.InvokeAPIPattern, &apigw.InvokeProxy{Functions: names, URL: cfg.functionURL, Limit: limit})
	mux.Handle("/", gw)
	srv := &http.Server{Addr: cfg.Addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("gateway listening", "addr", cfg.Addr, "routes", len(routes), "function_concurrency", cfg.Concurrency, "queue", cfg.Queue)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// limitedInvoker holds invocations to the function's Limiter slots, as the
// API's and the Invoke API's are, within timeout.
type limitedInvoker struct {
	inv     apigw.Invoker
	limit   *apigw.Limiter
	timeout time.Duration
}

func (l limitedInvoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	release, err := l.limit.Acquire(ctx, function)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", function, err)
	}
	defer release()
	return l.inv.Invoke(ctx, function, payload)
}

// healthcheck asks the local gateway for its health path and returns the exit code.
func healthcheck(getenv func(string) string) int {
	cfg, err := loadConfig(getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	addr := cfg.Addr
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + addr + healthPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "status", resp.StatusCode)
		return 1
	}
	return 0
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
