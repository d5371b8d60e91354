package bridge_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/bridge"
	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
)

// metric scrapes one unlabelled sample from the bridge's /metrics.
func metric(t *testing.T, b *bridge.Bridge, name string) float64 {
	t.Helper()
	addr, err := b.MetricsAddr(context.Background())
	require.NoError(t, err)
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

func TestBridgeReportsABrokerWindowSmallerThanMaxInFlight(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	_, endpoint := newFake(t)
	tests := []struct {
		name         string
		stated       string
		wantStated   float64
		wantShortage float64
	}{
		{"mosquitto's default window", "20", 20, 180},
		{"a window covering MAX_IN_FLIGHT", "200", 200, 0},
		{"not stated", "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startBridge(t, broker.URL, endpoint, map[string]string{"BROKER_MAX_INFLIGHT": tt.stated, "MAX_IN_FLIGHT": "200"})
			assert.Equal(t, tt.wantStated, metric(t, b.b, "tempwatch_bridge_broker_max_inflight"))
			assert.Equal(t, tt.wantShortage, metric(t, b.b, "tempwatch_bridge_broker_window_short"))
			b.stop()
		})
	}
}

func TestLoadRefusesABadBrokerWindow(t *testing.T) {
	for _, v := range []string{"-1", "65536", "lots"} {
		_, err := bridge.Load(func(k string) string { return map[string]string{"BROKER_MAX_INFLIGHT": v}[k] })
		assert.ErrorContains(t, err, "BROKER_MAX_INFLIGHT", "BROKER_MAX_INFLIGHT=%s", v)
	}
}
