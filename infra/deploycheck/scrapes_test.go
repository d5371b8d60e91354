package deploycheck_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tempwatch/tempwatch/infra/deploycheck"
)

func TestCheckScrapesFindsProblems(t *testing.T) {
	root := repoRoot(t)
	edit := func(file, old, new string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			mustEdit(t, filepath.Join(dir, file), func(s string) string { return strings.Replace(s, old, new, 1) })
		}
	}
	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{"a function not scraped", edit(deploycheck.PrometheusConfig, "- sensors:9464\n", ""),
			[]string{"service sensors serves metrics on :9464, which infra/monitoring/prometheus.yml does not scrape"}},
		{"a target that is no service", edit(deploycheck.PrometheusConfig, "- sensors:9464", "- sensor:9464"),
			[]string{"job functions scrapes sensor:9464, which is no service of docker-compose.yml"}},
		{"another port", edit(deploycheck.ComposeFile, `METRICS_ADDR: ":9464"`, `METRICS_ADDR: ":9465"`),
			[]string{"serves metrics on :9465"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := MustCopyTree(t, root)
			tt.break_(t, dir)
			assertHasError(t, deploycheck.CheckScrapes(context.Background(), dir), tt.want...)
		})
	}
}
