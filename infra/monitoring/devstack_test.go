package monitoring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/devstack/stack/stacktest"
	"github.com/tempwatch/tempwatch/infra/simulator/sim"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
)

// TestDashboardAgainstDevstack runs a devstack (the functions of
// template.yaml that the load drives) with a bridge, loads it (devices publishing over MQTT, some
// malformed and some twice; API requests, a few refused; HTTP device
// ingest), lets a real Prometheus scrape the functions' and the bridge's
// metrics, and then runs every query of the dashboard and every alert rule
// through Prometheus' HTTP API: each query must answer without error and
// with data, each rule must evaluate healthy and, on this healthy stack,
// stay quiet.
func TestDashboardAgainstDevstack(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL, Redis and Debian's prometheus: not run with -short (make test-unit)")
	}
	mustBinary(t, "prometheus") // before the minutes the stack takes to build
	var queries []query
	for _, f := range dashboards {
		_, qs, err := loadQueries(f)
		require.NoError(t, err)
		queries = append(queries, qs...)
	}
	rules := loadAlertRules(t)

	dbURL := pgtest.MustSchemaURL(t)
	// A Redis of the test's own, which the second part stops.
	redisSrv := redistest.MustServer(t)
	jwtKeys, _ := auth.NewKeyPair("dev")
	env := map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redisSrv.URL(),
		"JWT_SIGNING_KEYS": jwtKeys, "LOG_LEVEL": "warn"}
	if v := os.Getenv("MONGODB_URL"); v != "" {
		env["MONGODB_URL"] = v
	}
	// The functions the load drives (building the others only costs time).
	s, _ := stacktest.MustStart(t, stack.Config{Root: "../..", Instances: 1, Env: env, MetricsAddr: "127.0.0.1:0", Bridge: true,
		Only: []string{"auth", "clients", "sensors", "measurements", "readings", "statistics", "ingest", "archive", "users", "openapi"}})
	bridgeMetrics, err := url.Parse(s.BridgeMetricsURL())
	require.NoError(t, err)

	alertsPath, err := filepath.Abs("alerts.yml")
	require.NoError(t, err)
	fnMetrics, err := url.Parse(s.MetricsURL())
	require.NoError(t, err)
	jobs := []scrapeJob{
		{Name: "bridge", Targets: []string{bridgeMetrics.Host}},
		{Name: "functions", Targets: []string{fnMetrics.Host}, Path: fnMetrics.Path},
	}
	prom := startPrometheus(t, prometheusConfig(jobs, []string{alertsPath}))

	ctx, stopLoad := context.WithCancel(context.Background())
	load := startLoad(ctx, t, s, stacktest.MustAdminToken(t, dbURL, jwtKeys))
	defer func() {
		stopLoad()
		load.wait(t)
	}()

	waitForScrapes(t, prom, jobs)

	var failed []string
	for _, q := range queries {
		r, err := prom.query(context.Background(), q.Expr)
		t.Logf("panel %q [%s]: %s\n    -> %d series (%d finite)", q.Panel, q.RefID, q.Expr, r.Series, r.Finite)
		switch {
		case err != nil:
			failed = append(failed, fmt.Sprintf("%q [%s]: %v", q.Panel, q.RefID, err))
		case r.Series == 0:
			failed = append(failed, fmt.Sprintf("%q [%s]: no data", q.Panel, q.RefID))
		case r.Finite == 0:
			failed = append(failed, fmt.Sprintf("%q [%s]: %d series, none with a finite value", q.Panel, q.RefID, r.Series))
		}
	}
	require.Empty(t, failed, "panel queries that failed against the devstack's metrics")
	checkRules(t, prom, rules)

	// Redis stopped: the degraded series appear, the panels that show them
	// show more than their zeros, and TempwatchRedisDegraded goes pending.
	load.redisDown.Store(true)
	redisSrv.Kill()
	for _, sig := range []string{`tempwatch_cache_requests_total{result="degraded"}`, `tempwatch_redis_degraded_total`} {
		waitData(t, prom, fmt.Sprintf("sum(rate(%s[1m])) > 0", sig))
	}
	for _, q := range queries {
		if !strings.Contains(q.Expr, "degraded") {
			continue
		}
		r, err := prom.query(context.Background(), q.Expr)
		require.NoError(t, err, "panel %q [%s]", q.Panel, q.RefID)
		t.Logf("Redis stopped: panel %q [%s] -> %d series, %d above zero", q.Panel, q.RefID, r.Series, r.Positive)
		require.Positive(t, r.Positive, "panel %q [%s] with Redis stopped: %s", q.Panel, q.RefID, q.Expr)
	}
	waitFor(t, 60*time.Second, "TempwatchRedisDegraded pending with Redis stopped", func(ctx context.Context) error {
		var d alertsData
		if err := get(ctx, prom, "alerts", nil, &d); err != nil {
			return err
		}
		for _, a := range d.Alerts {
			if a.Labels["alertname"] == "TempwatchRedisDegraded" {
				t.Logf("Redis stopped: TempwatchRedisDegraded %s for %s %s", a.State, a.Labels["function"], a.Labels["operation"])
				return nil
			}
		}
		return errors.New("not active")
	})
}

// waitForScrapes waits until every target is up and Prometheus holds several
// scrapes of each, with the load's traffic in them: rates and quantiles over
// a window need two samples or more.
func waitForScrapes(t *testing.T, prom *prometheusServer, jobs []scrapeJob) {
	t.Helper()
	want := 0
	for _, j := range jobs {
		want += len(j.Targets)
	}
	waitFor(t, 60*time.Second, "every scrape target up", func(ctx context.Context) error {
		var d targetsData
		if err := get(ctx, prom, "targets", nil, &d); err != nil {
			return err
		}
		up := 0
		var down []string
		for _, tg := range d.ActiveTargets {
			if tg.Health == "up" {
				up++
			} else {
				down = append(down, fmt.Sprintf("%s %s: %s %s", tg.ScrapePool, tg.ScrapeURL, tg.Health, tg.LastError))
			}
		}
		if up != want {
			return fmt.Errorf("%d of %d targets up; %s", up, want, strings.Join(down, "; "))
		}
		return nil
	})
	// Samples the load makes, each scraped at least three times.
	signals := []string{
		`tempwatch_bridge_acked_total > 0`,
		`tempwatch_ingest_readings_total{outcome="stored"} > 0`,
		`tempwatch_ingest_readings_total{outcome="duplicate"} > 0`,
		`tempwatch_ingest_readings_total{outcome="rejected"} > 0`,
		`tempwatch_ingest_batch_duration_seconds_count{source="http"} > 0`,
		`tempwatch_http_requests_total{code="4xx"} > 0`,
	}
	for _, sig := range signals {
		waitScraped(t, prom, sig)
	}
}

// waitScraped waits until the samples expr selects have been in at least
// three scrapes.
func waitScraped(t *testing.T, prom *prometheusServer, expr string) {
	t.Helper()
	waitData(t, prom, fmt.Sprintf("count_over_time((%s)[1m:1s]) >= 3", expr))
}

// waitData waits until q answers some series.
func waitData(t *testing.T, prom *prometheusServer, q string) {
	t.Helper()
	waitFor(t, 90*time.Second, "data for "+q, func(ctx context.Context) error {
		r, err := prom.query(ctx, q)
		if err != nil {
			return err
		}
		if r.Series == 0 {
			return errors.New("not yet")
		}
		return nil
	})
}

// checkRules waits until Prometheus has evaluated every rule of alerts.yml,
// each healthy, runs each expression through the query API, and waits until
// no alert is pending or firing: the stack under test is healthy.
func checkRules(t *testing.T, prom *prometheusServer, rules []alertRule) {
	t.Helper()
	waitFor(t, 30*time.Second, "every alert rule evaluated, healthy", func(ctx context.Context) error {
		var d rulesData
		if err := get(ctx, prom, "rules", nil, &d); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, g := range d.Groups {
			for _, r := range g.Rules {
				if r.Health != "ok" || r.LastEvaluation.IsZero() {
					return fmt.Errorf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
				}
				seen[r.Name] = true
			}
		}
		for _, r := range rules {
			if !seen[r.Name] {
				return fmt.Errorf("rule %s not loaded", r.Name)
			}
		}
		return nil
	})
	for _, r := range rules {
		res, err := prom.query(context.Background(), r.Expr)
		require.NoError(t, err, "alert %s: %s", r.Name, r.Expr)
		t.Logf("alert %s: %s\n    -> %d series", r.Name, strings.Join(strings.Fields(r.Expr), " "), res.Series)
	}
	waitFor(t, 30*time.Second, "no alert pending or firing on a healthy stack", func(ctx context.Context) error {
		var d alertsData
		if err := get(ctx, prom, "alerts", nil, &d); err != nil {
			return err
		}
		var active []string
		for _, a := range d.Alerts {
			active = append(active, a.Labels["alertname"]+" "+a.State)
		}
		if len(active) > 0 {
			return fmt.Errorf("active: %s", strings.Join(active, ", "))
		}
		return nil
	})
}

// load is the traffic of startLoad: devices publishing over MQTT and API
// clients, until its context ends.
type load struct {
	redisDown atomic.Bool // from here on, answers are counted apart
	wg        sync.WaitGroup
	mu        sync.Mutex
	published int
	errs      []error
	byClass   map[string]int // API answers by status class
}

func (l *load) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 20 {
		l.errs = append(l.errs, err)
	}
}

// wait ends the load and fails the test on what went wrong in it: a 5xx or
// a transport error (the stack is healthy).
func (l *load) wait(t *testing.T) {
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("load: %d MQTT messages published; API answers by status class: %v", l.published, l.byClass)
	for _, err := range l.errs {
		t.Errorf("load: %v", err)
	}
}

// startLoad creates 2 clients of 3 sensors through the API, connects the
// sensors to the broker and publishes 20 messages a second among them (a
// tenth malformed, a tenth sent twice), and runs a round of API requests
// every 200 ms: reads of each resource, HTTP device ingest, and requests
// that must be refused (404, 400, 401).
func startLoad(ctx context.Context, t *testing.T, s *stack.Stack, token string) *load {
	t.Helper()
	api := &sim.API{BaseURL: s.APIURL(), Token: token}
	fleet := sim.Fleet(2, 3, 7)
	require.NoError(t, api.Setup(ctx, fleet))
	devices, err := sim.ConnectDevices(s.MQTTURL(), fleet)
	require.NoError(t, err)
	sensorIDs := listIDs(t, s.APIURL(), token, "/sensors?limit=50")
	require.Len(t, sensorIDs, len(fleet))

	l := &load{byClass: map[string]int{}}
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		defer devices.Close()
		n, err := sim.Run(ctx, sim.NewGenerator(fleet, sim.Mix{Malformed: 0.1, Duplicate: 0.1}, 1), 20, 0, devices.Publish)
		l.mu.Lock()
		l.published = n
		l.mu.Unlock()
		if err != nil && !errors.Is(err, context.Canceled) {
			l.fail(fmt.Errorf("publish: %w", err))
		}
	}()
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for round := 0; ; round++ {
			l.apiRound(ctx, s.APIURL(), token, sensorIDs[round%len(sensorIDs)], fleet[0].Key, round)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return l
}

type request struct {
	method, path, token string
	header              map[string]string
	body                string
	want                int // status class: 2, 4
}

func (l *load) apiRound(ctx context.Context, base, token, sensorID, deviceKey string, round int) {
	day := time.Now().UTC().Format("2006-01-02")
	reqs := []request{
		{method: "GET", path: "/sensors?limit=10", token: token, want: 2},
		{method: "GET", path: "/sensors/" + sensorID, token: token, want: 2},
		{method: "GET", path: "/sensors/" + sensorID + "/readings?limit=10", token: token, want: 2},
		{method: "GET", path: "/sensors/" + sensorID + "/daily-averages?from=" + day + "&to=" + day + "&tz=UTC", token: token, want: 2},
		{method: "GET", path: "/clients?limit=10", token: token, want: 2},
		{method: "GET", path: "/measurements?sensor_id=" + sensorID + "&limit=10", token: token, want: 2},
		{method: "GET", path: "/auth/me", token: token, want: 2},
		{method: "POST", path: "/ingest/readings", header: map[string]string{"X-Device-Key": deviceKey},
			body: fmt.Sprintf(`[{"value":4.5,"ts":%q}]`, time.Now().UTC().Add(time.Duration(round)*time.Microsecond).Format(time.RFC3339Nano)), want: 2},
		// refused: not found, a bad parameter, no token
		{method: "GET", path: "/sensors/" + auth.NewID(), token: token, want: 4},
		{method: "GET", path: "/sensors?limit=100000", token: token, want: 4},
		{method: "GET", path: "/clients", want: 4},
	}
	if round%5 == 0 { // some routes less often
		reqs = append(reqs,
			request{method: "GET", path: "/sensors/" + sensorID + "/readings/latest", token: token},
			request{method: "GET", path: "/dead-letters?limit=5", token: token, want: 2},
			request{method: "GET", path: "/users?limit=5", token: token, want: 2},
			request{method: "GET", path: "/openapi.json", want: 2},
			request{method: "GET", path: "/.well-known/jwks.json", want: 2})
	}
	for _, r := range reqs {
		if ctx.Err() != nil {
			return
		}
		code, err := do(ctx, base, r)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.fail(fmt.Errorf("%s %s: %w", r.method, r.path, err))
			continue
		}
		class := fmt.Sprintf("%dxx", code/100)
		if l.redisDown.Load() {
			class += " (Redis stopped)"
		}
		l.mu.Lock()
		l.byClass[class]++
		l.mu.Unlock()
		if code >= 500 || (r.want != 0 && code/100 != r.want) {
			l.fail(fmt.Errorf("%s %s: %d, want %dxx", r.method, r.path, code, r.want))
		}
	}
}

func do(ctx context.Context, base string, r request) (int, error) {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, base+r.path, body)
	if err != nil {
		return 0, err
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// listIDs returns the ids of a list route's items.
func listIDs(t *testing.T, base, token, path string) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, b)
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	require.NoError(t, json.NewDecoder(bytes.NewReader(b)).Decode(&page))
	var ids []string
	for _, it := range page.Items {
		ids = append(ids, it.ID)
	}
	slices.Sort(ids)
	return ids
}
