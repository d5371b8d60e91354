package bridge_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/bridge"
	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
	"github.com/tempwatch/tempwatch/shared/metrics/promtooltest"
)

// The lag and health the bridge exports: the oldest unacknowledged message's
// age while the function fails and 0 once all is stored, each message's ack
// delay, batch sizes, duplicates as the function reports them, and the
// broker connection; promtool accepts the exposition.
func TestBridgeExportsLagDuplicatesAndBrokerState(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	f, endpoint := newFake(t)
	f.setAnswer(func(int) string { return "500" })
	r := startBridge(t, broker.URL, endpoint, nil)
	m := r.b.Metrics()
	assert.Equal(t, 1.0, testutil.ToFloat64(m.BrokerConnected))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.BrokerConnects))

	publish(t, broker.URL, 0, 5)
	require.Eventually(t, func() bool { c, _ := f.snapshot(); return c >= 2 }, 10*time.Second, 5*time.Millisecond,
		"the bridge retries the failing function")
	age := gauge(t, r.b, "tempwatch_bridge_oldest_unacked_age_seconds")
	assert.Positive(t, age, "the messages wait unacked")
	require.Eventually(t, func() bool { return gauge(t, r.b, "tempwatch_bridge_oldest_unacked_age_seconds") > age },
		10*time.Second, 5*time.Millisecond, "and their age grows")

	f.setAnswer(nil)
	waitStored(t, f, payloads(0, 5))
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.Acked) == 5 }, 10*time.Second, 5*time.Millisecond)
	assert.Zero(t, gauge(t, r.b, "tempwatch_bridge_oldest_unacked_age_seconds"), "nothing unacked")
	assert.Equal(t, 5.0, gauge(t, r.b, "tempwatch_bridge_ack_delay_seconds_count"), "one ack delay per message")
	publish(t, broker.URL, 0, 5) // the same readings again
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.Duplicates) == 5 }, 10*time.Second, 5*time.Millisecond)
	// Duplicates are counted when the function answers, ack delays after the ack.
	require.Eventually(t, func() bool { return gauge(t, r.b, "tempwatch_bridge_ack_delay_seconds_count") == 10 },
		10*time.Second, 5*time.Millisecond, "one ack delay per message")
	calls, _ := f.snapshot()
	assert.Equal(t, float64(calls), gauge(t, r.b, "tempwatch_bridge_batch_messages_count"), "one size per invoked batch")
	assert.GreaterOrEqual(t, gauge(t, r.b, "tempwatch_bridge_batch_messages_sum"), 10.0+5, "every message once in a stored batch, and the failed attempts")
	promtooltest.MustCheckMetrics(t, scrape(t, r.b))

	r.stop()
	assert.Equal(t, 0.0, testutil.ToFloat64(m.BrokerConnected), "disconnected at shutdown")
}

func scrape(t testing.TB, b *bridge.Bridge) []byte {
	t.Helper()
	addr, err := b.MetricsAddr(context.Background())
	require.NoError(t, err)
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return body
}

// gauge is the value of the unlabelled series name in b's /metrics.
func gauge(t testing.TB, b *bridge.Bridge, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(string(scrape(t, b)), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, line)
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}
