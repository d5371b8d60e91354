package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/bridge"
	"github.com/tempwatch/tempwatch/bridge/invoker"
	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// fakeFunction is a Lambda Invoke API peer whose answer the test controls;
// it records every payload it stored, and how often.
type fakeFunction struct {
	mu     sync.Mutex
	calls  int
	stored map[string]int
	// answer decides the reply to one call: "" stores the batch; "500", "error"
	// (X-Amz-Function-Error) and "retry" (every item in batchItemFailures) fail it.
	answer func(call int) string
	// stores is signalled after each call it answered (stored, duplicates,
	// rejections), for waiters that need no polling.
	stores chan struct{}
}

func (f *fakeFunction) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/2015-03-31/functions/ingest/invocations" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	var req tempwatch.BatchRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.calls++
	answer := ""
	if f.answer != nil {
		answer = f.answer(f.calls)
	}
	resp := tempwatch.BatchResponse{BatchItemFailures: []tempwatch.BatchItemFailure{}}
	switch answer {
	case "hang": // a stuck function: the bridge holds its messages unacked
		f.mu.Unlock()
		<-r.Context().Done()
		return
	case "500":
		f.mu.Unlock()
		http.Error(w, `{"message":"service unavailable"}`, http.StatusInternalServerError)
		return
	case "error":
		f.mu.Unlock()
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		_, _ = w.Write([]byte(`{"errorMessage":"db down","errorType":"errorString"}`))
		return
	case "retry":
		for _, m := range req.Messages {
			resp.BatchItemFailures = append(resp.BatchItemFailures, tempwatch.BatchItemFailure{ItemIdentifier: m.ID})
		}
	default:
		for _, m := range req.Messages {
			if string(m.Payload) == "reject" {
				resp.Rejected++
				resp.Rejections = append(resp.Rejections, tempwatch.Rejection{ID: m.ID, Reason: "not JSON"})
				continue
			}
			if f.stored[string(m.Payload)] > 0 {
				resp.Duplicates++
			} else {
				resp.Accepted++
			}
			f.stored[string(m.Payload)]++
		}
		select {
		case f.stores <- struct{}{}:
		default: // a signal is already waiting
		}
	}
	f.mu.Unlock()
	_ = json.NewEncoder(w).Encode(resp)
}

func (f *fakeFunction) snapshot() (calls int, stored map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	stored = make(map[string]int, len(f.stored))
	for k, v := range f.stored {
		stored[k] = v
	}
	return f.calls, stored
}

func (f *fakeFunction) setAnswer(a func(int) string) {
	f.mu.Lock()
	f.answer = a
	f.mu.Unlock()
}

func newFake(tb testing.TB) (*fakeFunction, string) {
	f := &fakeFunction{stored: map[string]int{}, stores: make(chan struct{}, 1)}
	srv := httptest.NewServer(f)
	tb.Cleanup(srv.Close)
	return f, srv.URL
}

// running is a bridge started by startBridge; stop ends it gracefully.
type running struct {
	stop func()
	b    *bridge.Bridge
}

func startBridge(tb testing.TB, brokerURL, endpoint string, env map[string]string) running {
	tb.Helper()
	base := map[string]string{
		"MQTT_URL": brokerURL, "MQTT_CLIENT_ID": "bridge-test", "LAMBDA_ENDPOINT": endpoint,
		"BATCH_SIZE": "50", "BATCH_TIMEOUT": "50ms", "MAX_IN_FLIGHT": "200", "METRICS_ADDR": "127.0.0.1:0",
		"RETRY_BASE": "10ms", "RETRY_MAX": "100ms", "SHUTDOWN_TIMEOUT": "2s",
	}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := bridge.Load(func(k string) string { return base[k] })
	require.NoError(tb, err)
	inv, err := invoker.New(context.Background(), invoker.Config{Function: cfg.Function, Endpoint: cfg.LambdaEndpoint,
		Region: cfg.Region, MaxConns: cfg.Workers()}, func(string) string { return "" })
	require.NoError(tb, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	b := bridge.New(cfg, inv.Invoke, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	addrCtx, c2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer c2()
	addr, err := b.MetricsAddr(addrCtx)
	require.NoError(tb, err)
	require.Eventually(tb, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond, "bridge never became healthy")
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(tb, <-done)
		})
	}
	tb.Cleanup(stop)
	return running{stop: stop, b: b}
}

func publish(tb testing.TB, brokerURL string, from, to int) {
	tb.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprintf("pub-%d-%d", from, time.Now().UnixNano())))
	require.True(tb, c.Connect().WaitTimeout(5*time.Second))
	defer c.Disconnect(100)
	var tokens []paho.Token
	for i := from; i < to; i++ {
		tokens = append(tokens, c.Publish(fmt.Sprintf("tempwatch/acme/sensors/dev-%d/readings", i%7), 1, false, fmt.Sprintf(`{"value":%d}`, i)))
	}
	for _, t := range tokens {
		require.True(tb, t.WaitTimeout(10*time.Second))
		require.NoError(tb, t.Error())
	}
}

// publishPayload publishes one payload at QoS 1 to a readings topic.
func publishPayload(tb testing.TB, brokerURL, payload string) {
	tb.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprintf("pub-one-%d", time.Now().UnixNano())))
	require.True(tb, c.Connect().WaitTimeout(5*time.Second))
	defer c.Disconnect(100)
	tok := c.Publish("tempwatch/acme/sensors/dev-s/readings", 1, false, payload)
	require.True(tb, tok.WaitTimeout(10*time.Second))
	require.NoError(tb, tok.Error())
}

// storedUpToSentinel publishes a sentinel and waits until the function
// stored it and r holds nothing: a broker sends what a session held before
// what is published after the subscription, so whatever came back to r's
// session has been received, and settled, by then. It returns what the
// function stored, the sentinel left out.
func storedUpToSentinel(tb testing.TB, f *fakeFunction, brokerURL string, r running) map[string]int {
	tb.Helper()
	sentinel := fmt.Sprintf(`{"sentinel":%d}`, time.Now().UnixNano())
	publishPayload(tb, brokerURL, sentinel)
	require.Eventually(tb, func() bool {
		_, stored := f.snapshot()
		return stored[sentinel] == 1 && inFlight(tb, r.b) == 0
	}, 20*time.Second, 10*time.Millisecond, "the sentinel is stored and nothing is held")
	_, stored := f.snapshot()
	delete(stored, sentinel)
	return stored
}

func payloads(from, to int) map[string]int {
	m := map[string]int{}
	for i := from; i < to; i++ {
		m[fmt.Sprintf(`{"value":%d}`, i)] = 1
	}
	return m
}

func waitStored(tb testing.TB, f *fakeFunction, want map[string]int) {
	tb.Helper()
	require.Eventually(tb, func() bool {
		_, got := f.snapshot()
		return len(got) >= len(want)
	}, 20*time.Second, 20*time.Millisecond)
	_, got := f.snapshot()
	assert.Equal(tb, want, got)
}

// subscribe a bridge first (its session must exist before anything is
// published), then run the scenario.
func TestBridgeStoresEveryMessageOnceThroughRetries(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	f, endpoint := newFake(t)
	// A transport error, a function error and a batchItemFailures answer
	// before the function starts storing.
	f.setAnswer(func(call int) string {
		return map[int]string{1: "500", 2: "error", 3: "retry"}[call]
	})
	startBridge(t, broker.URL, endpoint, nil)
	publish(t, broker.URL, 0, 300)
	waitStored(t, f, payloads(0, 300))
	calls, _ := f.snapshot()
	assert.Greater(t, calls, 3)
}

func TestBridgeAcksOnlyAfterStorage(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	// The first bridge talks to a function that is down. (A separate peer:
	// a request the stopped bridge sent could otherwise still reach the
	// working function and be stored without ever being acked; redelivered,
	// it would be a duplicate, which is right, but not what this test counts.)
	down, downEndpoint := newFake(t)
	down.setAnswer(func(int) string { return "error" })
	first := startBridge(t, broker.URL, downEndpoint, map[string]string{"SHUTDOWN_TIMEOUT": "100ms"})
	publish(t, broker.URL, 0, 40)
	require.Eventually(t, func() bool { c, _ := down.snapshot(); return c >= 3 }, 10*time.Second, 10*time.Millisecond,
		"the bridge keeps retrying")
	first.stop() // gives up after SHUTDOWN_TIMEOUT with nothing acked

	f, endpoint := newFake(t) // the function is back
	second := startBridge(t, broker.URL, endpoint, nil)
	waitStored(t, f, payloads(0, 40))
	second.stop()

	// Everything was acked: a third session of the same client gets nothing.
	third := startBridge(t, broker.URL, endpoint, nil)
	assert.Equal(t, payloads(0, 40), storedUpToSentinel(t, f, broker.URL, third))
	assert.Equal(t, 1.0, testutil.ToFloat64(third.b.Metrics().MessagesIn), "acked messages must not come back")
}

func TestBridgeAcksRejectedMessages(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	f, endpoint := newFake(t)
	b := startBridge(t, broker.URL, endpoint, nil)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("pub-reject"))
	require.True(t, c.Connect().WaitTimeout(5*time.Second))
	require.True(t, c.Publish("tempwatch/acme/sensors/d/readings", 1, false, "reject").WaitTimeout(5*time.Second))
	c.Disconnect(100)
	publish(t, broker.URL, 0, 5)
	waitStored(t, f, payloads(0, 5))
	b.stop()
	again := startBridge(t, broker.URL, endpoint, nil)
	assert.Equal(t, payloads(0, 5), storedUpToSentinel(t, f, broker.URL, again))
	assert.Equal(t, 1.0, testutil.ToFloat64(again.b.Metrics().MessagesIn), "a rejected message is acked and never redelivered")
}

func TestBridgePersistentSessionKeepsWhatArrivesWhileDown(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	f, endpoint := newFake(t)
	b := startBridge(t, broker.URL, endpoint, nil)
	publish(t, broker.URL, 0, 100)
	waitStored(t, f, payloads(0, 100))
	b.stop()

	publish(t, broker.URL, 100, 250) // the bridge is down

	startBridge(t, broker.URL, endpoint, nil)
	waitStored(t, f, payloads(0, 250))
}

func TestBridgeCleanSessionLosesWhatArrivesWhileDown(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	f, endpoint := newFake(t)
	env := map[string]string{"MQTT_CLEAN_SESSION": "true"}
	b := startBridge(t, broker.URL, endpoint, env)
	publish(t, broker.URL, 0, 10)
	waitStored(t, f, payloads(0, 10))
	b.stop()
	publish(t, broker.URL, 10, 20)
	again := startBridge(t, broker.URL, endpoint, env)
	publish(t, broker.URL, 20, 30)
	want := payloads(0, 10)
	for k, v := range payloads(20, 30) {
		want[k] = v
	}
	assert.Equal(t, want, storedUpToSentinel(t, f, broker.URL, again), "what was published while the bridge was away is lost")
}

func TestBridgeShutdownFlushesOpenBatch(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	f, endpoint := newFake(t)
	// Neither size nor time would close the batch before the shutdown.
	env := map[string]string{"BATCH_SIZE": "1000", "MAX_IN_FLIGHT": "1000", "BATCH_TIMEOUT": "1m", "BATCH_IDLE": "0s"}
	b := startBridge(t, broker.URL, endpoint, env)
	publish(t, broker.URL, 0, 25)
	require.Eventually(t, func() bool { return testutil.ToFloat64(b.b.Metrics().MessagesIn) == 25 }, 10*time.Second, 10*time.Millisecond,
		"the bridge received them")
	calls, _ := f.snapshot()
	require.Zero(t, calls, "the batch is still open")
	b.stop()
	calls, stored := f.snapshot()
	assert.Equal(t, payloads(0, 25), stored, "shutdown delivered the open batch")
	assert.Equal(t, 1, calls)

	again := startBridge(t, broker.URL, endpoint, nil) // batches close quickly again
	assert.Equal(t, payloads(0, 25), storedUpToSentinel(t, f, broker.URL, again))
	assert.Equal(t, 1.0, testutil.ToFloat64(again.b.Metrics().MessagesIn), "and acked it: nothing comes back")
}

// inFlight scrapes the bridge's in_flight gauge.
func inFlight(t testing.TB, b *bridge.Bridge) float64 {
	t.Helper()
	return gauge(t, b, "tempwatch_bridge_in_flight")
}

func TestBridgeHoldsAtMostMaxInFlightInBatches(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	stuck, stuckEndpoint := newFake(t)
	stuck.setAnswer(func(int) string { return "hang" })
	env := map[string]string{"BATCH_SIZE": "10", "MAX_IN_FLIGHT": "20", "SHUTDOWN_TIMEOUT": "100ms"}
	first := startBridge(t, broker.URL, stuckEndpoint, env)
	publish(t, broker.URL, 0, 100)
	require.Eventually(t, func() bool { return inFlight(t, first.b) == 100 }, 10*time.Second, 10*time.Millisecond,
		"in_flight counts the 20 in batches and the 80 waiting beyond MAX_IN_FLIGHT")
	first.stop() // leaves all 100 unacked: the 80 waiting were never handed over
	calls, _ := stuck.snapshot()
	assert.Equal(t, 2, calls, "MAX_IN_FLIGHT / BATCH_SIZE batches were delivered at once, and no more while it ran")

	f, endpoint := newFake(t)
	startBridge(t, broker.URL, endpoint, env)
	waitStored(t, f, payloads(0, 100))
}

func TestBridgeWritesACPUProfile(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	f, endpoint := newFake(t)
	path := filepath.Join(t.TempDir(), "bridge.prof")
	b := startBridge(t, broker.URL, endpoint, map[string]string{"BRIDGE_CPUPROFILE": path})
	publish(t, broker.URL, 0, 20)
	waitStored(t, f, payloads(0, 20))
	b.stop()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Greater(t, len(data), 2)
	assert.Equal(t, []byte{0x1f, 0x8b}, data[:2], "a gzipped pprof profile, complete once the bridge stopped")
}
