package monitoring

import (
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// mustBinary finds one of Debian's prometheus package's programs. A missing
// one fails the test (make test installs the package: services.sh
// need_prometheus), except under -short, where it skips.
func mustBinary(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " not found: the monitoring tests need Debian's prometheus package " +
		"(make test installs it, infra/scripts/services.sh need_prometheus; or apt-get install prometheus)"
	if testing.Short() {
		tb.Skip(msg)
	}
	tb.Fatal(msg)
	return ""
}

func promtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(mustBinary(t, "promtool"), args...).CombinedOutput()
	require.NoError(t, err, "promtool %v:\n%s", args, out)
}

// TestPromtool checks prometheus.yml (and the rule files it loads) and runs
// alerts_test.yml's cases.
func TestPromtool(t *testing.T) {
	t.Run("check config", func(t *testing.T) { promtool(t, "check", "config", "prometheus.yml") })
	t.Run("check rules", func(t *testing.T) { promtool(t, "check", "rules", "alerts.yml") })
	t.Run("test rules", func(t *testing.T) { promtool(t, "test", "rules", "alerts_test.yml") })
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string `yaml:"alert"`
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// alertRule is one alerting rule of alerts.yml.
type alertRule struct{ Name, Expr string }

func loadAlertRules(tb testing.TB) []alertRule {
	tb.Helper()
	b, err := os.ReadFile("alerts.yml")
	require.NoError(tb, err)
	var f ruleFile
	require.NoError(tb, yaml.Unmarshal(b, &f))
	var out []alertRule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, alertRule{Name: r.Alert, Expr: r.Expr})
			}
		}
	}
	require.NotEmpty(tb, out, "alerts.yml has no alerting rule")
	return out
}

// TestEveryAlertHasCases holds alerts_test.yml to a case where each alert
// fires and one where it stays quiet.
func TestEveryAlertHasCases(t *testing.T) {
	b, err := os.ReadFile("alerts_test.yml")
	require.NoError(t, err)
	var f struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(b, &f))
	require.Equal(t, []string{"alerts.yml"}, f.RuleFiles)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	var names []string
	for _, r := range loadAlertRules(t) {
		names = append(names, r.Name)
		require.True(t, fires[r.Name], "alerts_test.yml has no case where %s fires", r.Name)
		require.True(t, quiet[r.Name], "alerts_test.yml has no case where %s stays quiet", r.Name)
	}
	for n := range fires {
		require.True(t, slices.Contains(names, n), "alerts_test.yml tests %s, which alerts.yml does not define", n)
	}
}
