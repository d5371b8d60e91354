package bridge_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/bridge"
	bridgemetrics "github.com/tempwatch/tempwatch/bridge/metrics"
	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// crashPayload is a message the stub function crashes on, as a function
// with a bug crashes on one input.
const crashPayload = "crash"

// ingestStub is an Invoke API peer that behaves as the ingest function
// does with what the bridge sends it: it refuses a request over Lambda's
// invoke limit as Lambda does (413, RequestTooLargeException), dead-letters
// refused messages without parsing them and reports them in rejections,
// crashes (X-Amz-Function-Error) on crashPayload, and stores the rest,
// counting each payload it stores.
type ingestStub struct {
	limit      int // request bytes it takes; Lambda's invoke limit unless set
	mu         sync.Mutex
	stored     map[string]int // by payloadKey
	dead       []deadLetter
	maxRequest int // bytes of the largest request it took
	tooLarge   int // requests refused as too large
	crashes    int
}

type deadLetter struct {
	ID, Topic, Reason string
	Size              int
	Head              []byte
}

func newIngestStub(tb testing.TB) (*ingestStub, string) {
	s := &ingestStub{stored: map[string]int{}}
	srv := httptest.NewServer(s)
	tb.Cleanup(srv.Close)
	return s, srv.URL
}

// payloadKey keeps the stub's record small for large payloads.
func payloadKey(p []byte) string {
	if len(p) <= 64 {
		return string(p)
	}
	return fmt.Sprintf("sha256:%x", sha256.Sum256(p))
}

func (s *ingestStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	limit := s.limit
	if limit == 0 {
		limit = bridge.InvokeLimitBytes
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > limit {
		s.mu.Lock()
		s.tooLarge++
		s.mu.Unlock()
		w.Header().Set("X-Amzn-ErrorType", "RequestTooLargeException")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_, _ = fmt.Fprintf(w, `{"Type":"User","message":"Request must be smaller than %d bytes for the InvokeFunction operation"}`, limit)
		return
	}
	var req tempwatch.BatchRequest
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxRequest = max(s.maxRequest, len(body))
	for _, m := range req.Messages {
		if m.Refused == "" && string(m.Payload) == crashPayload {
			s.crashes++
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			_, _ = w.Write([]byte(`{"errorMessage":"invalid memory address or nil pointer dereference","errorType":"runtime.Error"}`))
			return
		}
	}
	resp := tempwatch.BatchResponse{BatchItemFailures: []tempwatch.BatchItemFailure{}}
	for _, m := range req.Messages {
		if m.Refused != "" {
			s.dead = append(s.dead, deadLetter{ID: m.ID, Topic: m.Topic, Reason: m.Refused, Size: m.Size, Head: m.Payload})
			resp.Rejected++
			resp.Rejections = append(resp.Rejections, tempwatch.Rejection{ID: m.ID, Reason: m.Refused})
			continue
		}
		k := payloadKey(m.Payload)
		if s.stored[k] > 0 {
			resp.Duplicates++
		} else {
			resp.Accepted++
		}
		s.stored[k]++
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *ingestStub) snapshot() (stored map[string]int, dead []deadLetter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored = make(map[string]int, len(s.stored))
	for k, v := range s.stored {
		stored[k] = v
	}
	return stored, append([]deadLetter(nil), s.dead...)
}

// mosquittoPub runs mosquitto_pub against addr at QoS 1 with args, feeding
// it stdin when not nil: publishers in their own processes leave this
// process's memory to the bridge being measured.
func mosquittoPub(addr, clientID string, stdin io.Reader, args ...string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	cmd := exec.Command("mosquitto_pub", append([]string{"-h", host, "-p", port, "-q", "1", "-i", clientID}, args...)...)
	cmd.Stdin = stdin
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mosquitto_pub %v: %w: %s", args, err, out)
	}
	return nil
}

// heapPeak samples the heap in use until stop is called, and returns the
// largest value seen. runtime/metrics reads it without stopping the world,
// so sampling often disturbs the bridge little.
func heapPeak() (stop func() uint64) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	done, result := make(chan struct{}), make(chan uint64)
	go func() {
		var peak uint64
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(samples)
			peak = max(peak, samples[0].Value.Uint64()+samples[1].Value.Uint64())
			select {
			case <-done:
				result <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-result }
}

func maxRSS(tb testing.TB) int64 {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return ru.Maxrss << 10 // KiB on Linux
}

func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// TestBridgeDeadLettersWhatWouldJamIt: five 10 MiB messages and one
// message the function crashes on amid 10,000 normal ones. Every normal
// message is stored exactly once; the five are refused before batching and
// the crashing one after MAX_ATTEMPTS, each dead-lettered once with its
// reason; everything is acknowledged, and the bridge holds no 10 MiB message
// while it works.
func TestBridgeDeadLettersWhatWouldJamIt(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Fatal("mosquitto_pub not installed")
	}
	const normal, bigs = 10_000, 5
	broker := mosquittotest.MustStart(t)
	stub, endpoint := newIngestStub(t)
	env := map[string]string{"BATCH_SIZE": "500", "MAX_IN_FLIGHT": "2000", "BATCH_TIMEOUT": "200ms", "BATCH_IDLE": "20ms",
		"MAX_ATTEMPTS": "5", "RETRY_BASE": "10ms", "RETRY_MAX": "100ms", "MQTT_CLIENT_ID": "jam-bridge"}

	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	bigPayload := bytes.Repeat([]byte(`{"value":1,"pad":"`), 10<<20/18+1)[:10<<20]
	require.NoError(t, os.WriteFile(big, bigPayload, 0o600))
	bigHead := bytes.Clone(bigPayload[:tempwatch.RefusedHeadBytes]) // all the test keeps of it
	bigPayload = nil
	want := map[string]int{}
	var normalLines bytes.Buffer
	for i := range normal {
		p := fmt.Sprintf(`{"value":%d,"seq":%d}`, i%40, i)
		want[p] = 1
		normalLines.WriteString(p + "\n")
	}

	runtime.GC()
	allocBefore := totalAlloc()
	stopPeak := heapPeak()
	start := time.Now()
	r := startBridge(t, broker.URL, endpoint, env)
	topic := func(dev string) string { return "tempwatch/acme/sensors/" + dev + "/readings" }
	// The normal stream paced over about two seconds, the others in the
	// middle of it, each from a publisher of its own.
	lines, feed := io.Pipe()
	var publishers sync.WaitGroup
	errs := make(chan error, 3)
	publishers.Go(func() { errs <- mosquittoPub(broker.Addr, "pub-normal", lines, "-t", topic("dev-1"), "-l") })
	sc := bufio.NewScanner(&normalLines)
	// The publisher is paced, as devices send over time: a hundred
	// messages per tick.
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	for i := 0; sc.Scan(); i++ {
		_, err := feed.Write(append(sc.Bytes(), '\n'))
		require.NoError(t, err)
		switch i {
		case normal / 4:
			publishers.Go(func() {
				errs <- mosquittoPub(broker.Addr, "pub-big", nil, "-t", topic("dev-2"), "-f", big, "--repeat", fmt.Sprint(bigs))
			})
		case normal / 2:
			publishers.Go(func() { errs <- mosquittoPub(broker.Addr, "pub-crash", nil, "-t", topic("dev-3"), "-m", crashPayload) })
		}
		if i%100 == 99 {
			<-pace.C
		}
	}
	require.NoError(t, feed.Close())
	publishers.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	m := r.b.Metrics()
	total := float64(normal + bigs + 1)
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.Acked) >= total }, 60*time.Second, 10*time.Millisecond,
		"every message acknowledged")
	elapsed := time.Since(start)
	peak := stopPeak()
	allocs := totalAlloc() - allocBefore

	stored, dead := stub.snapshot()
	assert.Equal(t, len(want), len(stored), "every normal message stored")
	for k, n := range stored {
		if n != 1 || want[k] != 1 {
			t.Errorf("stored %.40q %d times, want %d", k, n, want[k])
		}
	}
	require.Len(t, dead, bigs+1, "one dead letter for each refused message")
	tooLarge := 0
	for _, d := range dead {
		switch d.Topic {
		case topic("dev-2"):
			tooLarge++
			assert.Equal(t, "payload is 10485760 bytes, over the 65536-byte limit", d.Reason)
			assert.Equal(t, 10<<20, d.Size)
			assert.Equal(t, bigHead, d.Head, "the head of the message, and no more")
		case topic("dev-3"):
			assert.Equal(t, "failed 5 attempts; last error: ingest function error (Unhandled): runtime.Error: invalid memory address or nil pointer dereference", d.Reason)
			assert.Equal(t, []byte(crashPayload), d.Head)
			assert.Equal(t, len(crashPayload), d.Size)
		default:
			t.Errorf("dead letter of %s: %s", d.Topic, d.Reason)
		}
	}
	assert.Equal(t, bigs, tooLarge)
	assert.Equal(t, total, testutil.ToFloat64(m.MessagesIn))
	assert.Equal(t, total, testutil.ToFloat64(m.Acked), "each acknowledged once")
	assert.Equal(t, float64(bigs), testutil.ToFloat64(m.Refused.WithLabelValues(bridgemetrics.RefusedPayloadTooLarge)))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.Refused.WithLabelValues(bridgemetrics.RefusedMaxAttempts)))
	assert.Equal(t, float64(bigs+1), testutil.ToFloat64(m.Rejected), "the function confirmed each dead letter")
	stub.mu.Lock()
	maxRequest, refused413, crashes := stub.maxRequest, stub.tooLarge, stub.crashes
	stub.mu.Unlock()
	assert.LessOrEqual(t, maxRequest, 5<<20, "requests stay under BATCH_MAX_BYTES")
	assert.Zero(t, refused413, "no request was too large for the Invoke API")
	assert.GreaterOrEqual(t, crashes, 5)
	t.Logf("%d messages (%d of 10 MiB) in %s; largest request %d bytes, %d crashes; heap in use at most %.1f MiB, "+
		"allocated %.1f MiB in all, max RSS %.1f MiB (test process: bridge, stub function and -race)",
		int(total), bigs, elapsed.Round(time.Millisecond), maxRequest, crashes, float64(peak)/(1<<20),
		float64(allocs)/(1<<20), float64(maxRSS(t))/(1<<20))
	// Loose bounds, to show the order of things: holding the messages
	// would take the heap past two of them and allocations past all five.
	// TestBridgeMemoryDoesNotGrowWithMessageSize is the exact check.
	assert.Less(t, peak, uint64(2*10<<20), "heap in use")
	assert.Less(t, allocs, uint64(bigs*10<<20), "allocated")

	// The broker agrees: a new session of the same client gets nothing
	// back. Anything still unacknowledged would arrive before a message
	// published after the bridge is back; once that one is stored and the
	// bridge holds nothing, nothing came back.
	r.stop()
	r = startBridge(t, broker.URL, endpoint, env)
	require.NoError(t, mosquittoPub(broker.Addr, "pub-sentinel", nil, "-t", topic("dev-5"), "-m", `{"value":0,"sentinel":true}`))
	require.Eventually(t, func() bool {
		s, _ := stub.snapshot()
		return s[`{"value":0,"sentinel":true}`] == 1 && inFlight(t, r.b) == 0
	}, 20*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1.0, testutil.ToFloat64(r.b.Metrics().MessagesIn), "nothing was redelivered")
}

// TestBridgeMemoryDoesNotGrowWithMessageSize runs the same stream twice,
// with five refused messages of 100 KiB and then of 10 MiB: what the
// bridge allocates and holds must not grow with their size, for it keeps
// their heads only and reads past the rest.
func TestBridgeMemoryDoesNotGrowWithMessageSize(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Fatal("mosquitto_pub not installed")
	}
	const normal, bigs = 2000, 5
	run := func(size int) (allocs, peak uint64) {
		broker := mosquittotest.MustStart(t)
		stub, endpoint := newIngestStub(t)
		file := filepath.Join(t.TempDir(), "big")
		require.NoError(t, os.WriteFile(file, bytes.Repeat([]byte("x"), size), 0o600))
		var lines bytes.Buffer
		for i := range normal {
			fmt.Fprintf(&lines, `{"value":%d,"seq":%d}`+"\n", i%40, i)
		}
		runtime.GC()
		before := totalAlloc()
		stopPeak := heapPeak()
		r := startBridge(t, broker.URL, endpoint, map[string]string{"MQTT_CLIENT_ID": fmt.Sprintf("mem-%d", size)})
		require.NoError(t, mosquittoPub(broker.Addr, "pub-normal", &lines, "-t", "tempwatch/acme/sensors/d1/readings", "-l"))
		require.NoError(t, mosquittoPub(broker.Addr, "pub-big", nil, "-t", "tempwatch/acme/sensors/d2/readings",
			"-f", file, "--repeat", fmt.Sprint(bigs)))
		require.Eventually(t, func() bool { return testutil.ToFloat64(r.b.Metrics().Acked) >= normal+bigs },
			30*time.Second, 10*time.Millisecond)
		peak = stopPeak()
		allocs = totalAlloc() - before
		r.stop()
		stored, dead := stub.snapshot()
		require.Len(t, stored, normal)
		require.Len(t, dead, bigs)
		return allocs, peak
	}
	smallAllocs, smallPeak := run(100 << 10)
	bigAllocs, bigPeak := run(10 << 20)
	t.Logf("%d messages and %d refused ones of 100 KiB: allocated %.1f MiB, heap in use at most %.1f MiB; "+
		"of 10 MiB: allocated %.1f MiB, heap in use at most %.1f MiB", normal, bigs,
		float64(smallAllocs)/(1<<20), float64(smallPeak)/(1<<20), float64(bigAllocs)/(1<<20), float64(bigPeak)/(1<<20))
	// Holding them would add the hundredfold size of each, 10 MiB apiece.
	assert.Less(t, int64(bigAllocs)-int64(smallAllocs), int64(5<<20), "allocations grew with the refused messages' size")
	assert.Less(t, int64(bigPeak)-int64(smallPeak), int64(5<<20), "heap in use grew with the refused messages' size")
}

// TestBridgeCapsBatchesInBytes: messages at the payload limit, which a
// batch of BATCH_SIZE would carry far past BATCH_MAX_BYTES, go in requests
// under it, and every one is stored.
func TestBridgeCapsBatchesInBytes(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Fatal("mosquitto_pub not installed")
	}
	const n = 200
	broker := mosquittotest.MustStart(t)
	stub, endpoint := newIngestStub(t)
	stub.limit = 1 << 20 // anything over BATCH_MAX_BYTES would be refused
	r := startBridge(t, broker.URL, endpoint, map[string]string{"BATCH_SIZE": "500", "MAX_IN_FLIGHT": "1000",
		"BATCH_MAX_BYTES": "1MiB", "MQTT_CLIENT_ID": "bytes-bridge"})
	var lines bytes.Buffer
	want := map[string]int{}
	for i := range n {
		p := fmt.Sprintf(`{"value":%d,"pad":"%s"}`, i, bytes.Repeat([]byte("x"), tempwatch.MaxPayloadBytes-30))
		require.LessOrEqual(t, len(p), tempwatch.MaxPayloadBytes)
		want[payloadKey([]byte(p))] = 1
		lines.WriteString(p + "\n")
	}
	require.NoError(t, mosquittoPub(broker.Addr, "pub-large", &lines, "-t", "tempwatch/acme/sensors/d/readings", "-l"))
	require.Eventually(t, func() bool { return testutil.ToFloat64(r.b.Metrics().Acked) >= n }, 30*time.Second, 10*time.Millisecond)
	stored, dead := stub.snapshot()
	assert.Equal(t, want, stored, "every message stored once")
	assert.Empty(t, dead)
	stub.mu.Lock()
	defer stub.mu.Unlock()
	assert.Zero(t, stub.tooLarge, "no request went over BATCH_MAX_BYTES")
	assert.LessOrEqual(t, stub.maxRequest, 1<<20)
	assert.Greater(t, stub.maxRequest, 3<<18, "and requests were filled near the cap, not cut short")
	assert.Greater(t, testutil.ToFloat64(r.b.Metrics().Batches), float64(n*(tempwatch.MaxPayloadBytes*4/3)/(1<<20)))
}

// TestBridgeSplitsWhatTheInvokeAPIRefuses: an Invoke API whose limit is
// under BATCH_MAX_BYTES (a proxy in front of it, say) refuses batches with
// 413; the bridge splits them until they pass, and stores every message
// once. None is dead-lettered: each fits alone.
func TestBridgeSplitsWhatTheInvokeAPIRefuses(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Fatal("mosquitto_pub not installed")
	}
	const n = 40
	broker := mosquittotest.MustStart(t)
	stub, endpoint := newIngestStub(t)
	stub.limit = 300 << 10
	r := startBridge(t, broker.URL, endpoint, map[string]string{"BATCH_SIZE": "500", "MAX_IN_FLIGHT": "1000",
		"BATCH_TIMEOUT": "1s", "BATCH_IDLE": "0s", "MQTT_CLIENT_ID": "split-bridge"})
	var lines bytes.Buffer
	want := map[string]int{}
	for i := range n {
		p := fmt.Sprintf(`{"value":%d,"pad":"%s"}`, i, bytes.Repeat([]byte("y"), 40<<10))
		want[payloadKey([]byte(p))] = 1
		lines.WriteString(p + "\n")
	}
	require.NoError(t, mosquittoPub(broker.Addr, "pub-large", &lines, "-t", "tempwatch/acme/sensors/d/readings", "-l"))
	require.Eventually(t, func() bool { return testutil.ToFloat64(r.b.Metrics().Acked) >= n }, 30*time.Second, 10*time.Millisecond)
	stored, dead := stub.snapshot()
	assert.Equal(t, want, stored, "every message stored once")
	assert.Empty(t, dead, "each fits alone: none refused")
	stub.mu.Lock()
	defer stub.mu.Unlock()
	assert.Positive(t, stub.tooLarge, "the Invoke API refused the first batches")
	assert.LessOrEqual(t, stub.maxRequest, 300<<10)
}

// A retained message the broker replays when the bridge subscribes is
// dead-lettered, not stored again; a message published while the bridge
// is subscribed is stored, retain flag or not.
func TestBridgeRefusesRetainedReplays(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	stub, endpoint := newIngestStub(t)
	topic := "tempwatch/acme/sensors/dev-1/readings"
	require.NoError(t, mosquittoPub(broker.Addr, "pub-retained", nil, "-t", topic, "-r", "-m", `{"value":1,"retained":true}`))
	r := startBridge(t, broker.URL, endpoint, map[string]string{"MQTT_CLIENT_ID": "retain-bridge"})
	require.NoError(t, mosquittoPub(broker.Addr, "pub-live-retained", nil, "-t", topic, "-r", "-m", `{"value":2,"retained":true}`))
	require.NoError(t, mosquittoPub(broker.Addr, "pub-live", nil, "-t", topic, "-m", `{"value":3}`))
	require.Eventually(t, func() bool { return testutil.ToFloat64(r.b.Metrics().Acked) >= 3 }, 20*time.Second, 10*time.Millisecond)

	stored, dead := stub.snapshot()
	assert.Equal(t, map[string]int{`{"value":2,"retained":true}`: 1, `{"value":3}`: 1}, stored)
	require.Len(t, dead, 1)
	assert.Equal(t, []byte(`{"value":1,"retained":true}`), dead[0].Head)
	assert.Contains(t, dead[0].Reason, "retained message replayed by the broker")
	assert.Equal(t, 1.0, testutil.ToFloat64(r.b.Metrics().Refused.WithLabelValues(bridgemetrics.RefusedRetained)))
}
