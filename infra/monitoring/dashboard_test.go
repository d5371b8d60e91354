package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// dashboards are the Grafana dashboards whose every query the devstack test
// runs; emqx.json is left out (devstack embeds another broker).
var dashboards = []string{"grafana/dashboards/tempwatch.json"}

type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource datasource `json:"datasource"`
	Targets    []target   `json:"targets"`
	Panels     []panel    `json:"panels"` // a collapsed row's
}

type target struct {
	RefID      string     `json:"refId"`
	Expr       string     `json:"expr"`
	Datasource datasource `json:"datasource"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// query is one panel target's expression, Grafana's variables replaced.
type query struct {
	Panel, RefID, Expr string
}

// grafanaVars are the variables the dashboards may use, and what stands for
// them in a test: windows long enough to hold several scrapes at the test's
// one-second scrape interval.
var grafanaVars = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "5m",
}

var grafanaVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// expand replaces Grafana's variables in expr; an unknown one is an error, so
// a dashboard cannot grow a variable the test would not know how to fill.
func expand(expr string) (string, error) {
	var unknown []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		name := grafanaVar.FindStringSubmatch(m)[1]
		v, ok := grafanaVars[name]
		if !ok {
			unknown = append(unknown, m)
			return m
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown Grafana variable %s", strings.Join(unknown, ", "))
	}
	return out, nil
}

// loadQueries reads a dashboard and returns every panel target's query, or
// what is wrong with a panel: one without a query, another datasource than
// the provisioned Prometheus, an unknown variable.
func loadQueries(path string) (*dashboard, []query, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	var qs []query
	var problems []string
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup {
				problems = append(problems, fmt.Sprintf("panel %q has the id %d of %q", p.Title, p.ID, prev))
			}
			ids[p.ID] = p.Title
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Datasource.UID != "prometheus" {
				problems = append(problems, fmt.Sprintf("panel %q: datasource uid %q, not the provisioned \"prometheus\"", p.Title, p.Datasource.UID))
			}
			if len(p.Targets) == 0 {
				problems = append(problems, fmt.Sprintf("panel %q has no query", p.Title))
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					problems = append(problems, fmt.Sprintf("panel %q target %s has no expr", p.Title, t.RefID))
					continue
				}
				if t.Datasource.UID != "" && t.Datasource.UID != "prometheus" {
					problems = append(problems, fmt.Sprintf("panel %q target %s: datasource uid %q", p.Title, t.RefID, t.Datasource.UID))
				}
				e, err := expand(t.Expr)
				if err != nil {
					problems = append(problems, fmt.Sprintf("panel %q target %s: %v", p.Title, t.RefID, err))
					continue
				}
				qs = append(qs, query{Panel: p.Title, RefID: t.RefID, Expr: e})
			}
		}
	}
	walk(d.Panels)
	if len(problems) > 0 {
		return nil, nil, fmt.Errorf("%s:\n  %s", path, strings.Join(problems, "\n  "))
	}
	return &d, qs, nil
}

// TestDashboardsParse checks every dashboard the provisioning serves: valid
// JSON, a uid, every panel a query on the provisioned datasource, only
// variables the Prometheus test can fill.
func TestDashboardsParse(t *testing.T) {
	files, err := filepath.Glob("grafana/dashboards/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	uids := map[string]string{}
	for _, f := range files {
		d, qs, err := loadQueries(f)
		require.NoError(t, err)
		require.NotEmpty(t, d.UID, "%s has no uid", f)
		require.NotContains(t, uids, d.UID, "%s and %s share a uid", f, uids[d.UID])
		uids[d.UID] = f
		require.NotEmpty(t, qs, "%s has no query", f)
	}
}

func TestExpand(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{name: "rate interval", in: "rate(x[$__rate_interval])", want: "rate(x[1m])"},
		{name: "braced", in: "increase(x[${__range}])", want: "increase(x[5m])"},
		{name: "none", in: "up", want: "up"},
		{name: "unknown", in: `x{function="$function"}`, err: "unknown Grafana variable $function"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expand(tc.in)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
