package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
)

// scrapeJob is one job of the generated Prometheus configuration.
type scrapeJob struct {
	Name    string
	Targets []string // host:port
	Path    string   // default /metrics
}

// prometheusConfig scrapes jobs every second and evaluates rules every
// second, so a test sees several scrapes within seconds.
func prometheusConfig(jobs []scrapeJob, ruleFiles []string) string {
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	if len(ruleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, f := range ruleFiles {
			fmt.Fprintf(&b, "  - %q\n", f)
		}
	}
	b.WriteString("scrape_configs:\n")
	for _, j := range jobs {
		path := j.Path
		if path == "" {
			path = "/metrics"
		}
		fmt.Fprintf(&b, "  - job_name: %q\n    metrics_path: %q\n    static_configs:\n      - targets: [", j.Name, path)
		for i, t := range j.Targets {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", t)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// prometheusServer is a Prometheus process of the test's own: its port, its
// data folder, never the package's system service.
type prometheusServer struct {
	URL string
}

// startPrometheus runs Debian's prometheus with config on a free port and
// waits until it is ready. It is stopped when the test ends; its log is
// printed if the test failed.
func startPrometheus(t *testing.T, config string) *prometheusServer {
	t.Helper()
	bin := mustBinary(t, "prometheus")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(config), 0o600))
	addr := freeAddr(t)
	logs := &stack.LogBuffer{}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	p := &prometheusServer{URL: "http://" + addr}
	waitFor(t, 60*time.Second, "prometheus ready at "+p.URL, func(ctx context.Context) error {
		select {
		case <-exited:
			t.Fatalf("prometheus exited before it was ready: %v\n%s\nconfig:\n%s", waitErr, logs.String(), config)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/-/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	})
	return p
}

// freeAddr returns a local address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// waitFor polls cond every 100 ms until it returns nil or the timeout ends,
// then fails with cond's last error.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond(ctx)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		case <-tick.C:
		}
	}
}

// The parts of Prometheus' HTTP API answers (/api/v1/...) the tests read.
// A small client of our own: client_golang's api package would bring in
// json-iterator for these few fields.
type (
	apiAnswer[T any] struct {
		Status    string   `json:"status"`
		ErrorType string   `json:"errorType"`
		Error     string   `json:"error"`
		Warnings  []string `json:"warnings"`
		Data      T        `json:"data"`
	}
	queryData struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"` // [unix time, "value"]
		} `json:"result"`
	}
	targetsData struct {
		ActiveTargets []struct {
			ScrapePool string `json:"scrapePool"`
			ScrapeURL  string `json:"scrapeUrl"`
			Health     string `json:"health"`
			LastError  string `json:"lastError"`
		} `json:"activeTargets"`
	}
	rulesData struct {
		Groups []struct {
			Rules []struct {
				Name           string    `json:"name"`
				Query          string    `json:"query"`
				Type           string    `json:"type"`
				Health         string    `json:"health"`
				LastError      string    `json:"lastError"`
				State          string    `json:"state"`
				LastEvaluation time.Time `json:"lastEvaluation"`
			} `json:"rules"`
		} `json:"groups"`
	}
	alertsData struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
)

// get calls GET /api/v1/<path> with params and decodes its data into out; an
// answer whose status is not "success" is an error carrying Prometheus' own.
func get[T any](ctx context.Context, p *prometheusServer, path string, params url.Values, out *T) error {
	u := p.URL + "/api/v1/" + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	var a apiAnswer[T]
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return fmt.Errorf("%s: %s, undecodable answer: %w", path, resp.Status, err)
	}
	if a.Status != "success" {
		return fmt.Errorf("%s: %s: %s: %s", path, resp.Status, a.ErrorType, a.Error)
	}
	if len(a.Warnings) > 0 {
		return fmt.Errorf("%s: warnings: %s", path, strings.Join(a.Warnings, "; "))
	}
	*out = a.Data
	return nil
}

// queryResult is an instant query's answer, summed up.
type queryResult struct {
	Type     string
	Series   int // series (or 1 for a scalar)
	Finite   int // of which with a finite value (not NaN or ±Inf)
	Positive int // of which above zero
}

func (p *prometheusServer) query(ctx context.Context, expr string) (queryResult, error) {
	var d queryData
	if err := get(ctx, p, "query", url.Values{"query": {expr}}, &d); err != nil {
		return queryResult{}, err
	}
	r := queryResult{Type: d.ResultType}
	switch d.ResultType {
	case "vector":
		for _, s := range d.Result {
			r.Series++
			if v, ok := s.Value[1].(string); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
					r.Finite++
					if f > 0 {
						r.Positive++
					}
				}
			}
		}
	default:
		return r, fmt.Errorf("result type %s, not an instant vector", d.ResultType)
	}
	return r, nil
}
