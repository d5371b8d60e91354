package bridge_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
)

// BenchmarkBridge moves b.N QoS 1 messages (the end-to-end benchmark's
// payload) from a private Mosquitto through the bridge (paho, batcher,
// delivery, the Lambda Invoke client) to a stub function that stores
// everything without looking, and reports the CPU this process (bridge and
// stub) spent per message. Publishers are mosquitto_pub processes, so their
// CPU is not counted. In "stream" four publishers send while the bridge
// runs, each message on its own, as devices do; in "backlog" the messages
// wait in the bridge's persistent session while it is away, and the broker
// sends them in bulk when it returns. Run with a fixed count:
//
//	go test -run '^$' -bench Bridge -benchtime 50000x ./bridge/bridge/
func BenchmarkBridge(b *testing.B) {
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		b.Skip("mosquitto_pub not installed")
	}
	env := map[string]string{"BATCH_SIZE": "500", "MAX_IN_FLIGHT": "2000", "BATCH_TIMEOUT": "200ms", "BATCH_IDLE": "20ms",
		"MQTT_CLIENT_ID": "bench-bridge"}
	b.Run("stream", func(b *testing.B) {
		broker := mosquittotest.MustStart(b)
		endpoint := stubFunction(b)
		r := startBridge(b, broker.URL, endpoint, env)
		measure(b, func() running { mustPublish(b, broker.Addr, b.N); return r })
	})
	b.Run("backlog", func(b *testing.B) {
		broker := mosquittotest.MustStart(b)
		endpoint := stubFunction(b)
		startBridge(b, broker.URL, endpoint, env).stop() // the session exists
		mustPublish(b, broker.Addr, b.N)
		measure(b, func() running { return startBridge(b, broker.URL, endpoint, env) })
	})
}

// measure starts the clock, runs run and waits until the bridge it returns
// acked b.N messages.
func measure(b *testing.B, run func() running) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU(b)
	r := run()
	deadline := time.Now().Add(5 * time.Minute)
	for testutil.ToFloat64(r.b.Metrics().Acked) < float64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("acked %.0f of %d", testutil.ToFloat64(r.b.Metrics().Acked), b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU(b)-cpu).Nanoseconds())/1e3/float64(b.N), "cpu-µs/msg")
}

// mustPublish publishes n messages from four mosquitto_pub processes.
func mustPublish(tb testing.TB, addr string, n int) {
	tb.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(tb, err)
	const publishers = 4
	errs := make(chan error, publishers)
	for p := range publishers {
		count := n / publishers
		if p < n%publishers {
			count++
		}
		go func() {
			if count == 0 {
				errs <- nil
				return
			}
			out, err := exec.Command("mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-M", "2000",
				"-i", fmt.Sprintf("bench-pub-%d", p), "-t", fmt.Sprintf("tempwatch/bench-1/sensors/dev-%04d/readings", p),
				"-m", `{"value":18.27,"ts":"2026-03-04T05:06:07.123Z"}`, "--repeat", fmt.Sprint(count)).CombinedOutput()
			if err != nil {
				err = fmt.Errorf("mosquitto_pub: %w: %s", err, out)
			}
			errs <- err
		}()
	}
	for range publishers {
		require.NoError(tb, <-errs)
	}
}

// stubFunction is an Invoke API peer that stores every batch without
// reading it: the bridge's work, not the function's, is measured.
func stubFunction(tb testing.TB) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"accepted":0,"duplicates":0,"rejected":0,"batchItemFailures":[]}`))
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// processCPU returns the user and system CPU time this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
