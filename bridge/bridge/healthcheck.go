package bridge

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// HealthcheckTimeout bounds `bridge -healthcheck`, below compose's
// healthcheck timeout so a hung bridge reads as unhealthy, not as a timeout.
const HealthcheckTimeout = 2 * time.Second

// Healthcheck asks the bridge listening on metricsAddr (METRICS_ADDR, e.g.
// ":8081") for /healthz and returns nil only for a 200: the bridge is
// subscribed. It is what `bridge -healthcheck` runs in an image without a
// shell or curl.
func Healthcheck(ctx context.Context, metricsAddr string) error {
	host, port, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		return fmt.Errorf("healthcheck: METRICS_ADDR %q: %w", metricsAddr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1" // a wildcard listener answers on loopback
	}
	ctx, cancel := context.WithTimeout(ctx, HealthcheckTimeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: status %d", url, resp.StatusCode)
	}
	return nil
}
