// Package stack runs tempwatch locally without Docker: it builds every
// function of template.yaml, runs the deploy steps (functions a custom
// resource invokes: functions/migrate) once as plain commands, runs each
// other function as its own bootstrap process(es) behind an emulated Lambda
// Runtime API, and serves the Lambda Invoke API and the API Gateway (REST,
// proxy integration) routes in front of them. Where no MQTT broker or
// MongoDB is configured it starts embedded ones.
package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tempwatch/tempwatch/infra/embedded/broker"
	"github.com/tempwatch/tempwatch/infra/embedded/ferret"
	"github.com/tempwatch/tempwatch/infra/gateway/apigw"
	"github.com/tempwatch/tempwatch/infra/gateway/sam"
	"github.com/tempwatch/tempwatch/infra/gateway/schedule"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/metrics/replay"
)

// Config says what to run and where.
type Config struct {
	Root       string // repository root: go builds run here; default "."
	APIAddr    string // API Gateway listen address; default 127.0.0.1:3000 ("127.0.0.1:0" picks a port)
	LambdaAddr string // Lambda Invoke API listen address; default 127.0.0.1:3001
	Instances  int    // warm instances per function; default 2
	Only       []string
	// Env resolves the template's intrinsic values (!Ref DatabaseURL for
	// DATABASE_URL) and overrides its plain ones; a variable no function of
	// the template lists is passed to every function. DATABASE_URL and
	// REDIS_URL get defaults; a missing MQTT_URL or MONGODB_URL starts an
	// embedded server; a missing MQTT_BROKER_SECRET or MQTT_BRIDGE_PASSWORD
	// gets a random value, a missing JWT_SIGNING_KEYS a fresh key pair.
	Env       map[string]string
	MQTTAddr  string // embedded broker address; default 127.0.0.1:0
	MongoAddr string // embedded FerretDB address; default 127.0.0.1:0
	WorkDir   string // build output; default a new temporary directory
	// FerretDir keeps the embedded FerretDB's data (devstack: .devstack/ferretdb
	// in the repository, so dead letters and raw payloads outlive a run);
	// default WorkDir/ferretdb, gone with a temporary WorkDir.
	FerretDir string
	// Bridge runs the MQTT bridge (supervised) against the broker and the
	// ingest function, when the stack serves ingest; its /healthz and
	// /metrics listen on BridgeMetricsAddr (default 127.0.0.1:0).
	Bridge            bool
	BridgeMetricsAddr string
	Logs              io.Writer // function output, one prefixed line each; default os.Stderr
	// MetricsAddr serves every function's metrics, all instances merged, at
	// /metrics; default 127.0.0.1:9464 ("127.0.0.1:0" picks a port).
	MetricsAddr string
	// ScheduleEvery, when set, runs every Schedule event of the template at
	// this interval instead of its rate (tests: a minute's sweep every
	// 200 ms); 0 runs each at its own rate.
	ScheduleEvery time.Duration
}

const (
	// stage is the API stage in the request context, as template.yaml's Api.
	stage = "v1"
	// startTimeout bounds building and waiting for every instance to ask
	// for its first event.
	startTimeout = 5 * time.Minute
)

// Stack is a running local system; Close stops it.
type Stack struct {
	cfg   Config
	env   map[string]string
	pools map[string]*pool // by Name and by LogicalID
	fns   []sam.Function   // the functions served, each by a pool
	// schedules are the served functions' Schedule events, run by
	// scheduler once the stack is up.
	schedules []schedule.Run
	scheduler *schedule.Scheduler
	steps     []sam.Function // the deploy steps, run once before the others
	// declared holds every variable some function of the template lists:
	// functionEnv gives such a variable only to the functions that list it.
	declared map[string]bool
	apiURL   string
	invURL   string
	// metrics is fed the EMF line each invocation writes (shared/metrics):
	// the functions' metrics as Lambda publishes them, served merged.
	metrics    *replay.Registry
	metricsURL string
	servers    []*http.Server
	stops      []func() // embedded servers, in start order
	// supervised are the servers devstack restarts when they die, by name.
	supervised map[string]*supervisor
	bridge     *supervisor // nil when the bridge is off
	// bridgeMetricsURL is where the bridge serves /healthz and /metrics.
	bridgeMetricsURL string
	tmpDir           string
	closeOne         sync.Once
}

// Start builds and runs the functions and serves the APIs. It returns once
// every instance is ready for events.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	cfg = withDefaults(cfg)
	s := &Stack{cfg: cfg, pools: map[string]*pool{}, env: map[string]string{}, metrics: replay.NewRegistry()}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	tpl, err := sam.Load(filepath.Join(cfg.Root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	s.steps = tpl.DeploySteps()
	s.declared = map[string]bool{}
	for _, fn := range tpl.Functions {
		for _, v := range fn.Env {
			s.declared[v.Name] = true
		}
	}
	s.fns, err = selectFunctions(serving(tpl), cfg.Only)
	if err != nil {
		return nil, err
	}
	var schedules []sam.Schedule
	for _, fn := range s.fns {
		schedules = append(schedules, fn.Schedules...)
	}
	if s.schedules, err = schedule.Plan(schedules, cfg.ScheduleEvery); err != nil {
		return nil, err
	}
	if cfg.WorkDir == "" {
		if s.tmpDir, err = os.MkdirTemp("", "tempwatch-devstack-"); err != nil {
			return nil, err
		}
		cfg.WorkDir = s.tmpDir
		s.cfg.WorkDir = s.tmpDir
	}

	if err := s.checkServices(ctx); err != nil {
		return nil, err
	}
	binaries, err := build(ctx, cfg.Root, filepath.Join(cfg.WorkDir, "functions"), append(slices.Clone(s.steps), s.fns...))
	if err != nil {
		return nil, err
	}
	// The deploy steps (functions/migrate) run before anything that reads
	// the database: the embedded broker's device check and the functions
	// check the schema at start.
	if err := s.runDeploySteps(ctx, binaries); err != nil {
		return nil, err
	}
	if err := s.startEmbedded(ctx); err != nil {
		return nil, err
	}
	if err := s.startPools(ctx, binaries); err != nil {
		return nil, err
	}
	if err := s.serve(); err != nil {
		return nil, err
	}
	s.startSchedules()
	if cfg.Bridge {
		if err := s.startBridge(ctx); err != nil {
			return nil, err
		}
	}
	ok = true
	return s, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Root == "" {
		cfg.Root = "."
	}
	if abs, err := filepath.Abs(cfg.Root); err == nil {
		cfg.Root = abs
	}
	if cfg.APIAddr == "" {
		cfg.APIAddr = "127.0.0.1:3000"
	}
	if cfg.LambdaAddr == "" {
		cfg.LambdaAddr = "127.0.0.1:3001"
	}
	if cfg.Instances <= 0 {
		cfg.Instances = 2
	}
	if cfg.MQTTAddr == "" {
		cfg.MQTTAddr = "127.0.0.1:0"
	}
	if cfg.MongoAddr == "" {
		cfg.MongoAddr = "127.0.0.1:0"
	}
	if cfg.Logs == nil {
		cfg.Logs = os.Stderr
	}
	if cfg.BridgeMetricsAddr == "" {
		cfg.BridgeMetricsAddr = "127.0.0.1:0"
	}
	if cfg.MetricsAddr == "" {
		cfg.MetricsAddr = "127.0.0.1:9464"
	}
	return cfg
}

// serving returns the template's functions but its deploy steps.
func serving(tpl *sam.Template) []sam.Function {
	steps := tpl.DeploySteps()
	return slices.DeleteFunc(slices.Clone(tpl.Functions), func(f sam.Function) bool {
		return slices.ContainsFunc(steps, func(s sam.Function) bool { return s.Name == f.Name })
	})
}

func selectFunctions(all []sam.Function, only []string) ([]sam.Function, error) {
	// Functions are built and addressed by folder name, so two resources
	// sharing a CodeUri would collide (deploycheck reports it too).
	for i := 1; i < len(all); i++ {
		if a, b := all[i-1], all[i]; a.Name == b.Name {
			return nil, fmt.Errorf("resources %s and %s share CodeUri %s", a.LogicalID, b.LogicalID, b.CodeURI)
		}
	}
	if len(only) == 0 {
		if len(all) == 0 {
			return nil, errors.New("the template declares no AWS::Serverless::Function")
		}
		return all, nil
	}
	var out []sam.Function
	for _, name := range only {
		i := slices.IndexFunc(all, func(f sam.Function) bool { return f.Name == name || f.LogicalID == name })
		if i < 0 {
			var names []string
			for _, f := range all {
				names = append(names, f.Name)
			}
			return nil, fmt.Errorf("no function %q in the template (have: %s)", name, strings.Join(names, ", "))
		}
		if !slices.ContainsFunc(out, func(f sam.Function) bool { return f.Name == all[i].Name }) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// checkServices fills in the service URLs and secrets, checks PostgreSQL and
// Redis answer and creates the database when it is missing.
func (s *Stack) checkServices(ctx context.Context) error {
	for k, v := range s.cfg.Env {
		s.env[k] = v
	}
	if s.env["DATABASE_URL"] == "" {
		s.env["DATABASE_URL"] = DefaultDatabaseURL
	}
	if s.env["REDIS_URL"] == "" {
		s.env["REDIS_URL"] = DefaultRedisURL
	}
	if err := ensureSecrets(s.env); err != nil {
		return err
	}
	if err := checkReachable(ctx, "PostgreSQL", s.env["DATABASE_URL"], "5432", startPostgres); err != nil {
		return err
	}
	if err := checkReachable(ctx, "Redis", s.env["REDIS_URL"], "6379", startRedis); err != nil {
		return err
	}
	return ensureDatabase(ctx, s.env["DATABASE_URL"])
}

// runDeploySteps runs each function that a custom resource of the template
// invokes (functions/migrate) once, as a plain command (no Runtime API) with
// that function's environment, as CloudFormation runs it before the
// functions that DependOn it. A step that fails stops the start, with what
// it said.
func (s *Stack) runDeploySteps(ctx context.Context, binaries map[string]string) error {
	for _, fn := range s.steps {
		var said bytes.Buffer
		out := &prefixWriter{w: io.MultiWriter(s.cfg.Logs, &said), mu: &logMu, prefix: "[" + fn.Name + "] "}
		cmd := exec.CommandContext(ctx, binaries[fn.Name])
		cmd.Env = s.functionEnv(fn)
		cmd.Dir = dirOf(binaries[fn.Name])
		cmd.Stdout, cmd.Stderr = out, out
		cmd.WaitDelay = 2 * time.Second
		err := cmd.Run()
		out.Flush()
		if err != nil {
			return fmt.Errorf("deploy step %s (%s) failed: %v; it said:\n%s",
				fn.Name, fn.CodeURI, err, strings.TrimRight(said.String(), "\n"))
		}
	}
	return nil
}

// startEmbedded starts the embedded broker and FerretDB where no URL is
// configured.
func (s *Stack) startEmbedded(ctx context.Context) error {
	if s.env["MQTT_URL"] == "" {
		auth, closeAuth, err := broker.NewAuthority(ctx, func(k string) string { return s.env[k] })
		if err != nil {
			return fmt.Errorf("embedded MQTT broker: %w", err)
		}
		s.stops = append(s.stops, closeAuth)
		addr, url := s.cfg.MQTTAddr, ""
		sup, err := s.supervise("embedded MQTT broker", func() (*serverRun, error) {
			srv, err := broker.Serve(addr, auth)
			if err != nil {
				return nil, err
			}
			// Restarts listen where the functions were told to connect
			// (set once, by the first start, before the watching begins).
			if url == "" {
				url = srv.URL()
				addr = strings.TrimPrefix(url, "tcp://")
			}
			return doneRun(srv.Done(), srv.Close, "the broker's listener"), nil
		})
		if err != nil {
			return fmt.Errorf("embedded MQTT broker: %w", err)
		}
		s.stops = append(s.stops, sup.Close)
		s.env["MQTT_URL"] = url
	}
	if s.env["MONGODB_URL"] == "" {
		dir := s.cfg.FerretDir
		if dir == "" {
			dir = filepath.Join(s.cfg.WorkDir, "ferretdb")
		}
		addr, uri := s.cfg.MongoAddr, ""
		log := slog.New(slog.NewTextHandler(&prefixWriter{w: s.cfg.Logs, mu: &logMu, prefix: "[ferretdb] "}, &slog.HandlerOptions{Level: slog.LevelError}))
		sup, err := s.supervise("embedded FerretDB", func() (*serverRun, error) {
			srv, err := ferret.Serve(context.WithoutCancel(ctx), dir, addr, ferret.Options{Logger: log})
			if err != nil {
				return nil, err
			}
			if uri == "" {
				uri = srv.URI()
				addr = strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
			}
			return doneRun(srv.Done(), srv.Close, "FerretDB"), nil
		})
		if err != nil {
			return fmt.Errorf("embedded FerretDB: %w", err)
		}
		s.stops = append(s.stops, sup.Close)
		s.env["MONGODB_URL"] = uri
	}
	return nil
}

// supervise starts a server devstack restarts when it dies, logging it.
func (s *Stack) supervise(name string, start func() (*serverRun, error)) (*supervisor, error) {
	w := &prefixWriter{w: s.cfg.Logs, mu: &logMu, prefix: "[devstack] "}
	sup, err := supervise(name, start, func(format string, args ...any) {
		fmt.Fprintf(w, format+"\n", args...)
	})
	if err != nil {
		return nil, err
	}
	if s.supervised == nil {
		s.supervised = map[string]*supervisor{}
	}
	s.supervised[name] = sup
	return sup, nil
}

// logMu serialises all devstack log lines so prefixes never interleave.
var logMu sync.Mutex

// functionEnv is the environment of one function's processes: the template
// variables (intrinsics resolved from s.env, which overrides them), the
// variables of s.env that no function of the template lists (overrides,
// TEMPWATCH_*), then Lambda's own. A variable some function lists goes to
// those functions only, as on AWS: the signing keys reach the auth function
// alone, a connection string no function that does not read it.
func (s *Stack) functionEnv(fn sam.Function) []string {
	vars := map[string]string{}
	for _, v := range fn.Env {
		switch {
		case s.env[v.Name] != "":
			vars[v.Name] = s.env[v.Name]
		case v.Ref == "":
			vars[v.Name] = v.Value
		case s.env[v.Ref] != "":
			vars[v.Name] = s.env[v.Ref]
		}
	}
	for k, v := range s.env {
		if !s.declared[k] {
			vars[k] = v
		}
	}
	for k, v := range map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        fn.LogicalID,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(fn.MemorySize),
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + fn.LogicalID,
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_REGION":                      region,
		"AWS_DEFAULT_REGION":              region,
		"AWS_EXECUTION_ENV":               "AWS_Lambda_provided.al2023",
		"LAMBDA_TASK_ROOT":                filepath.Join(s.cfg.WorkDir, "functions", fn.Name),
		"TZ":                              ":UTC",
		"_HANDLER":                        "bootstrap",
	} {
		vars[k] = v
	}
	if p := os.Getenv("PATH"); p != "" {
		vars["PATH"] = p
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func (s *Stack) startPools(ctx context.Context, binaries map[string]string) error {
	for _, fn := range s.fns {
		p := &pool{fn: fn, binary: binaries[fn.Name], env: s.functionEnv(fn), queue: make(chan *invocation),
			logs: s.cfg.Logs, logMu: &logMu, size: s.cfg.Instances, metrics: s.metrics}
		s.pools[fn.Name] = p
		s.pools[fn.LogicalID] = p
		for i := 1; i <= s.cfg.Instances; i++ {
			in, err := newInstance(p, i)
			if err != nil {
				return err
			}
			p.instances = append(p.instances, in)
		}
	}
	for _, fn := range s.fns {
		for _, in := range s.pools[fn.Name].instances {
			select {
			case <-in.ready:
			case msg := <-in.initErr:
				return fmt.Errorf("function %s failed to start: %s", fn.Name, msg)
			case <-ctx.Done():
				return fmt.Errorf("function %s did not ask for its first event in time: %w", fn.Name, ctx.Err())
			}
		}
	}
	return nil
}

func (s *Stack) serve() error {
	var routes []sam.Route
	timeout := time.Duration(0)
	for _, fn := range s.fns {
		routes = append(routes, fn.Routes...)
		timeout = max(timeout, fn.Timeout)
	}
	gw := &apigw.Gateway{
		Router:  apigw.NewRouter(routes),
		Invoker: gatewayInvoker{s},
		Stage:   stage,
		Log:     slog.New(slog.NewTextHandler(&prefixWriter{w: s.cfg.Logs, mu: &logMu, prefix: "[gateway] "}, nil)),
		// The function's own timeout answers first; this only bounds a wait
		// for a free instance.
		Timeout: min(timeout+5*time.Second, 29*time.Second),
	}
	api, err := s.listen(s.cfg.APIAddr, gw)
	if err != nil {
		return fmt.Errorf("API Gateway: %w", err)
	}
	s.apiURL = "http://" + api
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", s.handleInvoke)
	inv, err := s.listen(s.cfg.LambdaAddr, mux)
	if err != nil {
		return fmt.Errorf("lambda Invoke API: %w", err)
	}
	s.invURL = "http://" + inv
	metrics := http.NewServeMux()
	metrics.Handle("GET /metrics", s.metrics.Handler())
	addr, err := s.listen(s.cfg.MetricsAddr, metrics)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	s.metricsURL = "http://" + addr + "/metrics"
	return nil
}

func (s *Stack) listen(addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// MetricsURL is where every function's metrics are served, all instances
// merged, in Prometheus' text format, e.g. http://127.0.0.1:9464/metrics.
func (s *Stack) MetricsURL() string { return s.metricsURL }

// APIURL is the base URL of the API Gateway routes, e.g. http://127.0.0.1:3000.
func (s *Stack) APIURL() string { return s.apiURL }

// InvokeURL is the Lambda Invoke API endpoint, e.g. http://127.0.0.1:3001,
// for aws-sdk-go-v2's lambda client BaseEndpoint.
func (s *Stack) InvokeURL() string { return s.invURL }

// BridgeCredential is the credential the bridge logs in to the broker with,
// read as the broker and the mqttauth function read it
// (deviceauth.LoadBridge; devstack makes up the password when none is set).
func (s *Stack) BridgeCredential() deviceauth.Bridge {
	return deviceauth.LoadBridge(config.NewReader(func(k string) string { return s.env[k] }))
}

// MQTTURL is the broker the functions were given (embedded or configured).
func (s *Stack) MQTTURL() string { return s.env["MQTT_URL"] }

// MongoDBURL is the MongoDB the functions were given (embedded or configured).
func (s *Stack) MongoDBURL() string { return s.env["MONGODB_URL"] }

// DatabaseURL is the PostgreSQL database the functions were given.
func (s *Stack) DatabaseURL() string { return s.env["DATABASE_URL"] }

// BridgeMetricsURL is where the bridge serves /healthz and /metrics, e.g.
// http://127.0.0.1:41234 (no path); empty when the bridge is off.
func (s *Stack) BridgeMetricsURL() string { return s.bridgeMetricsURL }

// BridgeRunning reports whether the stack runs the MQTT bridge.
func (s *Stack) BridgeRunning() bool { return s.bridge != nil }

// Functions lists the running functions.
func (s *Stack) Functions() []sam.Function { return slices.Clone(s.fns) }

// Schedules lists the Schedule events the stack runs, each with the
// interval it runs at.
func (s *Stack) Schedules() []schedule.Run { return slices.Clone(s.schedules) }

// DeploySteps lists the functions that ran once before the others.
func (s *Stack) DeploySteps() []sam.Function { return slices.Clone(s.steps) }

// Close stops the servers, every bootstrap process and the embedded servers.
func (s *Stack) Close() error {
	s.closeOne.Do(func() {
		// The bridge first, so it flushes its open batch into the
		// still-running functions; the schedules next, so nothing invokes
		// a function that is stopping.
		if s.bridge != nil {
			s.bridge.Close()
		}
		if s.scheduler != nil {
			s.scheduler.Stop()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, srv := range s.servers {
			_ = srv.Shutdown(ctx)
		}
		var wg sync.WaitGroup
		for _, fn := range s.fns {
			p := s.pools[fn.Name]
			if p == nil {
				continue
			}
			for _, in := range p.instances {
				wg.Add(1)
				go func() { defer wg.Done(); in.shutdown() }()
			}
		}
		wg.Wait()
		for _, srv := range s.servers {
			_ = srv.Close()
		}
		for i := len(s.stops) - 1; i >= 0; i-- {
			s.stops[i]()
		}
		if s.tmpDir != "" {
			_ = os.RemoveAll(s.tmpDir)
		}
	})
	return nil
}
