package deploycheck

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// PrometheusConfig is the scrape configuration docker-compose.yml's
// prometheus service mounts.
const PrometheusConfig = "infra/monitoring/prometheus.yml"

// CheckScrapes checks that PrometheusConfig and docker-compose.yml agree:
// every target is a compose service, and every service that serves its
// metrics (METRICS_ADDR) is scraped on that port.
func CheckScrapes(ctx context.Context, root string) []error {
	p, err := loadCompose(ctx, root, ComposeFile)
	if err != nil {
		return []error{err}
	}
	b, err := os.ReadFile(filepath.Join(root, PrometheusConfig))
	if err != nil {
		return []error{err}
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return []error{fmt.Errorf("%s: %w", PrometheusConfig, err)}
	}
	var errs []error
	var targets []string
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, t := range st.Targets {
				targets = append(targets, t)
				host, _, err := net.SplitHostPort(t)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: job %s: target %q is not host:port", PrometheusConfig, sc.JobName, t))
					continue
				}
				if _, ok := p.Services[host]; !ok && host != "localhost" {
					errs = append(errs, fmt.Errorf("%s: job %s scrapes %s, which is no service of %s", PrometheusConfig, sc.JobName, t, ComposeFile))
				}
			}
		}
	}
	names := make([]string, 0, len(p.Services))
	for name := range p.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		addr := p.Services[name].Environment["METRICS_ADDR"]
		if addr == nil {
			continue
		}
		_, port, err := net.SplitHostPort(strings.TrimSpace(*addr))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: service %s: METRICS_ADDR %q is not [host]:port", ComposeFile, name, *addr))
			continue
		}
		if !slices.Contains(targets, net.JoinHostPort(name, port)) {
			errs = append(errs, fmt.Errorf("%s: service %s serves metrics on :%s, which %s does not scrape (add %s:%s)",
				ComposeFile, name, port, PrometheusConfig, name, port))
		}
	}
	return errs
}
