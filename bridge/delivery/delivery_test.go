package delivery_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/delivery"
	"github.com/tempwatch/tempwatch/bridge/metrics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func TestBackoffDelay(t *testing.T) {
	b := delivery.Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		name    string
		attempt int
		r       float64
		want    time.Duration
	}{
		{"no retry yet", 0, 0.5, 0},
		{"first retry low", 1, 0, 50 * time.Millisecond},
		{"first retry high", 1, 0.999999, 100 * time.Millisecond},
		{"third retry ceiling", 3, 0.999999, 400 * time.Millisecond},
		{"capped", 20, 0.999999, time.Second},
		{"capped floor", 20, 0, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.Rand = func() float64 { return tt.r }
			got := b.Delay(tt.attempt)
			assert.InDelta(t, float64(tt.want), float64(got), float64(time.Microsecond), "Delay(%d) = %s, want %s", tt.attempt, got, tt.want)
		})
	}
}

// recorder counts the acks of its items.
type recorder struct {
	mu    sync.Mutex
	acked map[string]int
	calls int // calls of ack
	// wrongReceipts counts items of items acked with another receipt than
	// the one they were given.
	wrongReceipts int
}

func (r *recorder) items(n int) []delivery.Item[int] {
	r.acked = map[string]int{}
	out := make([]delivery.Item[int], n)
	for i := range out {
		out[i] = delivery.Item[int]{Message: tempwatch.Message{ID: strconv.Itoa(i)}, Receipt: i}
	}
	return out
}

func (r *recorder) ack(items []delivery.Item[int]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	for _, it := range items {
		r.acked[it.Message.ID]++
		if id, err := strconv.Atoi(it.Message.ID); err == nil && it.Receipt != id {
			r.wrongReceipts++
		}
	}
}

func newDeliverer(invoke delivery.InvokeFunc, r *recorder) (*delivery.Deliverer[int], *metrics.Metrics) {
	m := metrics.New()
	return &delivery.Deliverer[int]{Invoke: invoke, Ack: r.ack, Metrics: m, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Backoff: delivery.Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond}}, m
}

func TestDeliverRetriesOnlyWhatFailed(t *testing.T) {
	var calls [][]string
	invoke := func(_ context.Context, req tempwatch.BatchRequest) (tempwatch.BatchResponse, error) {
		var got []string
		for _, m := range req.Messages {
			got = append(got, m.ID)
		}
		calls = append(calls, got)
		switch len(calls) {
		case 1: // 1 is retried, 2 is rejected for good, 0 and 3 stored
			return tempwatch.BatchResponse{Accepted: 2, Rejected: 1, Rejections: []tempwatch.Rejection{{ID: "2", Reason: "bad"}},
				BatchItemFailures: []tempwatch.BatchItemFailure{{ItemIdentifier: "1"}}}, nil
		case 2:
			return tempwatch.BatchResponse{}, errors.New("connection refused")
		case 3:
			return tempwatch.BatchResponse{}, errors.New("function error")
		default:
			return tempwatch.BatchResponse{Accepted: 1}, nil
		}
	}
	var r recorder
	d, m := newDeliverer(invoke, &r)
	require.NoError(t, d.Deliver(context.Background(), r.items(4)))
	assert.Equal(t, [][]string{{"0", "1", "2", "3"}, {"1"}, {"1"}, {"1"}}, calls)
	assert.Equal(t, map[string]int{"0": 1, "1": 1, "2": 1, "3": 1}, r.acked, "every message acked exactly once")
	assert.Equal(t, 2, r.calls, "the first answer's three acks went out together")
	assert.Zero(t, r.wrongReceipts, "each receipt handed back with its own message")
	assert.Equal(t, 4.0, testutil.ToFloat64(m.Acked))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.Rejected))
	assert.Equal(t, 3.0, testutil.ToFloat64(m.Retries))
	assert.Equal(t, 4.0, testutil.ToFloat64(m.Batches))
}

func TestDeliverNeverAcksWhileFunctionFails(t *testing.T) {
	invoke := func(context.Context, tempwatch.BatchRequest) (tempwatch.BatchResponse, error) {
		return tempwatch.BatchResponse{}, errors.New("down")
	}
	var r recorder
	d, m := newDeliverer(invoke, &r)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := d.Deliver(ctx, r.items(3))
	assert.ErrorIs(t, err, delivery.ErrAbandoned)
	assert.Empty(t, r.acked)
	assert.Greater(t, testutil.ToFloat64(m.Retries), 3.0, "it kept retrying")
}

func TestDeliverAllFailuresRetriesEverything(t *testing.T) {
	n := 0
	invoke := func(_ context.Context, req tempwatch.BatchRequest) (tempwatch.BatchResponse, error) {
		n++
		if n == 1 {
			var f []tempwatch.BatchItemFailure
			for _, m := range req.Messages {
				f = append(f, tempwatch.BatchItemFailure{ItemIdentifier: m.ID})
			}
			return tempwatch.BatchResponse{BatchItemFailures: f}, nil
		}
		return tempwatch.BatchResponse{Accepted: len(req.Messages)}, nil
	}
	var r recorder
	d, _ := newDeliverer(invoke, &r)
	require.NoError(t, d.Deliver(context.Background(), r.items(3)))
	assert.Equal(t, 2, n)
	assert.Len(t, r.acked, 3)
}

func TestDeliverIsolatesAMessageTheFunctionCrashesOn(t *testing.T) {
	errCrash := errors.New("function crashed")
	var mu sync.Mutex
	poisonCalls := 0
	invoke := func(_ context.Context, req tempwatch.BatchRequest) (tempwatch.BatchResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range req.Messages {
			if m.ID == "5" {
				poisonCalls++
				return tempwatch.BatchResponse{}, errCrash
			}
		}
		return tempwatch.BatchResponse{Accepted: len(req.Messages)}, nil
	}
	var r recorder
	d, _ := newDeliverer(invoke, &r)
	d.IsFunctionError = func(err error) bool { return errors.Is(err, errCrash) }
	// MaxAttempts 0: never refused, so never acked.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := d.Deliver(ctx, r.items(8))
	assert.ErrorIs(t, err, delivery.ErrAbandoned, "the poison message is never acked")
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Equal(t, map[string]int{"0": 1, "1": 1, "2": 1, "3": 1, "4": 1, "6": 1, "7": 1}, r.acked,
		"every other message was stored despite sharing its batch")
	assert.Greater(t, poisonCalls, 6)
}

func TestDeliverDoesNotSplitOnTransportErrors(t *testing.T) {
	var sizes []int
	invoke := func(_ context.Context, req tempwatch.BatchRequest) (tempwatch.BatchResponse, error) {
		sizes = append(sizes, len(req.Messages))
		if len(sizes) < 6 {
			return tempwatch.BatchResponse{}, errors.New("connection refused")
		}
		return tempwatch.BatchResponse{Accepted: len(req.Messages)}, nil
	}
	var r recorder
	d, _ := newDeliverer(invoke, &r)
	d.IsFunctionError = func(error) bool { return false }
	d.MaxAttempts = 1
	require.NoError(t, d.Deliver(context.Background(), r.items(4)))
	assert.Equal(t, []int{4, 4, 4, 4, 4, 4}, sizes)
}
