package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/delivery"
	"github.com/tempwatch/tempwatch/bridge/metrics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var (
	errCrash    = errors.New("function crashed")
	errTooLarge = errors.New("request too large")
	errDown     = errors.New("connection refused")
	// errNameAll from function.outage answers with every message in
	// batchItemFailures, as the function does while its database is down.
	errNameAll = errors.New("name everything")
)

// function is an ingest function for InvokeFunc: it stores what it is
// given, dead-letters refused messages (as the real one does, without
// parsing them), and fails as its fields say. Safe for the concurrent
// calls of split halves.
type function struct {
	// limit, when positive, refuses a request whose payloads add up to
	// more bytes, as the Invoke API refuses one over its limit.
	limit int
	// crash says the function crashes on a message (not refused ones).
	crash func(tempwatch.Message) bool
	// retry says the function names a message in batchItemFailures.
	retry func(tempwatch.Message) bool
	// outage, when it returns an error, fails the whole call with it.
	outage func(call int) error
	// latency is how long each call takes.
	latency time.Duration

	mu     sync.Mutex
	calls  int
	sizes  []int
	stored map[string]int
	dead   map[string]tempwatch.Message // dead letters by id
	deadN  map[string]int
}

func (f *function) invoke(ctx context.Context, req tempwatch.BatchRequest) (tempwatch.BatchResponse, error) {
	if f.latency > 0 {
		// The function's own work, cut short as a real invocation is when
		// the caller gives up.
		work := time.NewTimer(f.latency)
		select {
		case <-work.C:
		case <-ctx.Done():
			work.Stop()
			return tempwatch.BatchResponse{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stored == nil {
		f.stored, f.dead, f.deadN = map[string]int{}, map[string]tempwatch.Message{}, map[string]int{}
	}
	f.calls++
	f.sizes = append(f.sizes, len(req.Messages))
	nameAll := false
	if f.outage != nil {
		if err := f.outage(f.calls); errors.Is(err, errNameAll) {
			nameAll = true
		} else if err != nil {
			return tempwatch.BatchResponse{}, err
		}
	}
	bytes := 0
	for _, m := range req.Messages {
		bytes += len(m.Payload)
		if m.Refused == "" && f.crash != nil && f.crash(m) {
			return tempwatch.BatchResponse{}, errCrash
		}
	}
	if f.limit > 0 && bytes > f.limit {
		return tempwatch.BatchResponse{}, errTooLarge
	}
	resp := tempwatch.BatchResponse{BatchItemFailures: []tempwatch.BatchItemFailure{}}
	for _, m := range req.Messages {
		switch {
		case nameAll || (f.retry != nil && f.retry(m)):
			resp.BatchItemFailures = append(resp.BatchItemFailures, tempwatch.BatchItemFailure{ItemIdentifier: m.ID})
		case m.Refused != "":
			f.dead[m.ID] = m
			f.deadN[m.ID]++
			resp.Rejected++
			resp.Rejections = append(resp.Rejections, tempwatch.Rejection{ID: m.ID, Reason: m.Refused})
		default:
			if f.stored[m.ID] > 0 {
				resp.Duplicates++
			} else {
				resp.Accepted++
			}
			f.stored[m.ID]++
		}
	}
	return resp, nil
}

func (f *function) snapshot() (stored, deadN map[string]int, dead map[string]tempwatch.Message, sizes []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	stored, deadN, dead = map[string]int{}, map[string]int{}, map[string]tempwatch.Message{}
	for k, v := range f.stored {
		stored[k] = v
	}
	for k, v := range f.deadN {
		deadN[k] = v
	}
	for k, v := range f.dead {
		dead[k] = v
	}
	return stored, deadN, dead, slices.Clone(f.sizes)
}

func newJamDeliverer(f *function, r *recorder, maxAttempts int) (*delivery.Deliverer[int], *metrics.Metrics) {
	m := metrics.New()
	return &delivery.Deliverer[int]{Invoke: f.invoke, Ack: r.ack, Metrics: m, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Backoff:         delivery.Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond},
		IsFunctionError: func(err error) bool { return errors.Is(err, errCrash) },
		IsTooLarge:      func(err error) bool { return errors.Is(err, errTooLarge) },
		MaxAttempts:     maxAttempts, Concurrency: 4}, m
}

// sized returns items whose payloads are sizes bytes long.
func sized(r *recorder, sizes ...int) []delivery.Item[int] {
	items := r.items(len(sizes))
	for i, n := range sizes {
		items[i].Message.Payload = []byte(strings.Repeat(strconv.Itoa(i%10), n))
	}
	return items
}

func ids(from, to int, except ...string) map[string]int {
	m := map[string]int{}
	for i := from; i < to; i++ {
		if id := strconv.Itoa(i); !slices.Contains(except, id) {
			m[id] = 1
		}
	}
	return m
}

func TestDeliverSplitsWhatTheInvokeAPIRefusesAsTooLarge(t *testing.T) {
	tests := []struct {
		name      string
		sizes     []int
		wantSizes []int // the requests' lengths, sorted
		refused   []string
	}{
		{"fits", []int{100, 100, 100}, []int{3}, nil},
		{"halves fit", []int{500, 500, 500, 500}, []int{2, 2, 4}, nil},
		{"down to one", []int{900, 900, 900, 900}, []int{1, 1, 1, 1, 2, 2, 4}, nil},
		{"uneven", []int{10, 10, 10, 10, 1480, 10}, []int{3, 3, 6}, nil},
		{"one alone too large", []int{10, 2000, 10, 10}, []int{1, 1, 1, 2, 2, 4}, []string{"1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &function{limit: 1500}
			var r recorder
			d, m := newJamDeliverer(f, &r, 5)
			require.NoError(t, d.Deliver(context.Background(), sized(&r, tt.sizes...)))

			stored, deadN, dead, sizes := f.snapshot()
			slices.Sort(sizes)
			assert.Equal(t, tt.wantSizes, sizes, "requests, by length")
			assert.Equal(t, ids(0, len(tt.sizes), tt.refused...), stored, "every other message stored once")
			assert.Equal(t, ids(0, len(tt.sizes)), r.acked, "every message acked once")
			assert.Zero(t, r.wrongReceipts, "each receipt handed back with its own message, through the splits")
			assert.Len(t, deadN, len(tt.refused))
			for _, id := range tt.refused {
				assert.Equal(t, 1, deadN[id])
				assert.Contains(t, dead[id].Refused, "the Invoke API refused the message alone as too large")
				assert.Len(t, dead[id].Payload, tempwatch.RefusedHeadBytes, "only the head is sent")
				i, _ := strconv.Atoi(id)
				assert.Equal(t, tt.sizes[i], dead[id].Size)
			}
			assert.Equal(t, float64(len(tt.refused)), testutil.ToFloat64(m.Refused.WithLabelValues(metrics.RefusedInvokeTooLarge)))
			assert.Zero(t, testutil.ToFloat64(m.Refused.WithLabelValues(metrics.RefusedMaxAttempts)))
		})
	}
}

// traffic delivers batches of good messages through d until stop is
// closed, as the rest of a bridge's stream does meanwhile.
func traffic(t assert.TestingT, d *delivery.Deliverer[int], stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	var n atomic.Int64
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			batch := make([]delivery.Item[int], 10)
			for i := range batch {
				batch[i].Message.ID = fmt.Sprintf("traffic-%d", n.Add(1))
			}
			if err := d.Deliver(context.Background(), batch); t != nil {
				assert.NoError(t, err)
			}
		}
	})
	return wg.Wait
}

func TestDeliverRefusesAMessageThatKeepsFailingOnItsOwn(t *testing.T) {
	poison := func(m tempwatch.Message) bool { return m.ID == "13" && m.Refused == "" }
	tests := []struct {
		name    string
		f       *function
		lastErr string
	}{
		{"it crashes the function", &function{crash: poison}, "last error: function crashed"},
		{"the function names it for retry", &function{retry: poison}, "last error: the function asked to retry it (batchItemFailures)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			d, m := newJamDeliverer(tt.f, &r, 3)
			stop := make(chan struct{})
			batch := r.items(64) // before traffic: r.items resets the record
			wait := traffic(t, d, stop)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := d.Deliver(ctx, batch)
			close(stop)
			wait()
			require.NoError(t, err, "the message was refused, its dead letter stored, and it was acked")

			stored, deadN, dead, _ := tt.f.snapshot()
			for id := range ids(0, 64, "13") {
				assert.Equal(t, 1, stored[id], "message %s stored once", id)
			}
			assert.Zero(t, stored["13"])
			assert.Equal(t, map[string]int{"13": 1}, deadN, "one dead letter")
			assert.Equal(t, "failed 3 attempts; "+tt.lastErr, dead["13"].Refused)
			r.mu.Lock()
			for id := range ids(0, 64) {
				assert.Equal(t, 1, r.acked[id], "message %s acked once", id)
			}
			r.mu.Unlock()
			assert.Equal(t, 1.0, testutil.ToFloat64(m.Refused.WithLabelValues(metrics.RefusedMaxAttempts)))
		})
	}
}

// TestDeliverBlamesNoMessageForAnOutage: while nothing is stored anywhere
// (the function crashes on everything, the database is down, the function
// is unreachable), no attempt counts against a message: they all wait and
// are stored once it is back.
func TestDeliverBlamesNoMessageForAnOutage(t *testing.T) {
	const outageCalls = 60
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"the function crashes on everything", errCrash},
		{"the function names everything for retry", errNameAll},
		{"the function is unreachable", errDown},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &function{outage: func(call int) error {
				if call <= outageCalls {
					return tt.err
				}
				return nil
			}}
			var r recorder
			d, m := newJamDeliverer(f, &r, 2)
			require.NoError(t, d.Deliver(context.Background(), r.items(16)))
			stored, deadN, _, sizes := f.snapshot()
			require.Greater(t, len(sizes), outageCalls, "the outage was met")
			assert.Equal(t, ids(0, 16), stored, "every message stored once after the outage")
			assert.Empty(t, deadN, "none dead-lettered")
			assert.Equal(t, ids(0, 16), r.acked)
			assert.Zero(t, testutil.ToFloat64(m.Refused.WithLabelValues(metrics.RefusedMaxAttempts)))
		})
	}
}

// A refused message whose dead letter cannot be stored is retried until it
// is, never dropped, whatever MaxAttempts says.
func TestDeliverRetriesADeadLetterUntilItIsStored(t *testing.T) {
	calls := 0
	f := &function{}
	f.retry = func(m tempwatch.Message) bool { // f.mu is held
		if m.Refused == "" {
			return false
		}
		calls++
		return calls < 8
	}
	var r recorder
	d, _ := newJamDeliverer(f, &r, 1)
	stop := make(chan struct{})
	items := r.items(2)
	wait := traffic(t, d, stop) // the function works for everything else
	items[1].Message = delivery.Refuse(items[1].Message, 10<<20, "payload is 10485760 bytes, over the 65536-byte limit")
	err := d.Deliver(context.Background(), items)
	close(stop)
	wait()
	require.NoError(t, err)
	_, deadN, dead, _ := f.snapshot()
	assert.Equal(t, map[string]int{"1": 1}, deadN)
	assert.Equal(t, "payload is 10485760 bytes, over the 65536-byte limit", dead["1"].Refused, "its own reason, not an attempts one")
	assert.Equal(t, 1, r.acked["1"])
}

func TestRefuse(t *testing.T) {
	long := strings.Repeat("é", 2000)
	tests := []struct {
		name        string
		payload     []byte
		size        int
		reason      string
		wantPayload int
		wantReason  int
	}{
		{"small payload kept", []byte("abc"), 3, "r", 3, 1},
		{"head only", make([]byte, 5000), 5000, "r", tempwatch.RefusedHeadBytes, 1},
		{"already a head", make([]byte, tempwatch.RefusedHeadBytes), 10 << 20, "r", tempwatch.RefusedHeadBytes, 1},
		{"long reason cut on a rune", nil, 0, long, 0, 1<<10 + len("…")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tempwatch.Message{ID: "1", Topic: "t", Payload: tt.payload}
			got := delivery.Refuse(in, tt.size, tt.reason)
			assert.Len(t, got.Payload, tt.wantPayload)
			assert.Equal(t, tt.size, got.Size)
			assert.LessOrEqual(t, len(got.Refused), tt.wantReason)
			assert.True(t, strings.HasPrefix(tt.reason, strings.TrimSuffix(got.Refused, "…")))
			assert.True(t, utf8.ValidString(got.Refused), "Refuse(%q) = %q: valid UTF-8", tt.reason[:min(10, len(tt.reason))], got.Refused)
			if len(tt.payload) > tempwatch.RefusedHeadBytes {
				got.Payload[0] = 'x'
				assert.NotEqual(t, byte('x'), tt.payload[0], "a copy: the whole payload can be collected")
			}
		})
	}
}

// BenchmarkPoisonedBatch: a batch of 500 with one message the function
// crashes on, the function taking latency per call, the bridge's default
// backoff, and the rest of the stream flowing meanwhile. It reports how
// long the 499 good messages took to be stored and the bad one to be
// dead-lettered, and the invocations the batch cost.
//
//	go test -run '^$' -bench PoisonedBatch -benchtime 5x ./bridge/delivery/
func BenchmarkPoisonedBatch(b *testing.B) {
	const size, latency = 500, 2 * time.Millisecond
	var good, dead time.Duration
	var invocations int
	for b.Loop() {
		f := &function{crash: func(m tempwatch.Message) bool { return m.ID == "250" }, latency: latency}
		var mu sync.Mutex
		var stored int
		start := time.Now()
		var goodAt, deadAt time.Duration
		m := metrics.New()
		d := &delivery.Deliverer[int]{Invoke: f.invoke, Metrics: m, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Backoff:         delivery.Backoff{Base: 200 * time.Millisecond, Max: 30 * time.Second},
			IsFunctionError: func(err error) bool { return errors.Is(err, errCrash) },
			MaxAttempts:     5, Concurrency: 4,
			Ack: func(items []delivery.Item[int]) {
				mu.Lock()
				defer mu.Unlock()
				for _, it := range items {
					switch {
					case it.Message.ID == "250":
						deadAt = time.Since(start)
					case !strings.HasPrefix(it.Message.ID, "traffic-"):
						if stored++; stored == size-1 {
							goodAt = time.Since(start)
						}
					}
				}
			}}
		stop := make(chan struct{})
		wait := traffic(nil, d, stop)
		batch := make([]delivery.Item[int], size)
		for i := range batch {
			batch[i].Message.ID = strconv.Itoa(i)
		}
		if err := d.Deliver(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		close(stop)
		wait()
		_, _, _, sizes := f.snapshot()
		for _, n := range sizes {
			if n != 10 { // not the traffic's
				invocations++
			}
		}
		good += goodAt
		dead += deadAt
	}
	b.ReportMetric(float64(good.Milliseconds())/float64(b.N), "good-ms/op")
	b.ReportMetric(float64(dead.Milliseconds())/float64(b.N), "dead-letter-ms/op")
	b.ReportMetric(float64(invocations)/float64(b.N), "invokes/op")
}

// TestDeliverPoisonedBatchesDoNotStopTheOthers: as many batches as there
// are invocation slots, each with a message the function crashes on and
// nothing else stored meanwhile. Their good messages are still stored, and
// a batch delivered while the bad ones wait out their retries goes through:
// a batch waiting for a retry holds no slot.
func TestDeliverPoisonedBatchesDoNotStopTheOthers(t *testing.T) {
	f := &function{crash: func(m tempwatch.Message) bool { return strings.HasSuffix(m.ID, "-bad") }}
	var r recorder
	r.acked = map[string]int{}
	d, _ := newJamDeliverer(f, &r, 0) // never refused: the bad ones retry until ctx ends
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var poisoned sync.WaitGroup
	for b := range d.Concurrency {
		batch := make([]delivery.Item[int], 50)
		for i := range batch {
			batch[i].Message.ID = fmt.Sprintf("%d-%d", b, i)
		}
		batch[17].Message.ID += "-bad"
		poisoned.Go(func() { assert.ErrorIs(t, d.Deliver(ctx, batch), delivery.ErrAbandoned) })
	}
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.acked) == d.Concurrency*49
	}, 10*time.Second, time.Millisecond, "the good messages of the poisoned batches are stored")

	late := make([]delivery.Item[int], 10)
	for i := range late {
		late[i].Message.ID = fmt.Sprintf("late-%d", i)
	}
	lateCtx, lateCancel := context.WithTimeout(ctx, 10*time.Second)
	defer lateCancel()
	require.NoError(t, d.Deliver(lateCtx, late), "a batch behind them is invoked")
	cancel()
	poisoned.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for b := range d.Concurrency {
		assert.Zero(t, r.acked[fmt.Sprintf("%d-17-bad", b)], "a message the function crashes on is never acked without its dead letter")
	}
}
