// Package delivery hands batches to the ingest function and acknowledges each
// message once the function stored it or rejected it for good; everything
// else is retried with backoff and stays unacknowledged.
package delivery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/tempwatch/tempwatch/bridge/metrics"
	"github.com/tempwatch/tempwatch/bridge/mqtt"
	"github.com/tempwatch/tempwatch/shared/telemetry"
)

// InvokeFunc sends one batch to the ingest function.
type InvokeFunc func(ctx context.Context, req telemetry.BatchRequest) (telemetry.BatchResponse, error)

// Item is a received message and what acknowledges it to the broker.
type Item struct {
	Message telemetry.Message
	Ack     mqtt.Ack
}

// Deliverer retries a batch until every message is acknowledged.
type Deliverer struct {
	Invoke InvokeFunc
	// Ack acknowledges items the function stored or rejected for good, all
	// at once; each item is passed to it exactly once.
	Ack     func([]Item)
	Backoff Backoff
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// IsFunctionError tells an error the function raised on this input (a
	// crash, a timeout) from one reaching it (network, throttling). After
	// SplitAfter function errors in a row a batch is split in two and each
	// half delivered on its own, so one message that crashes the function
	// holds back only itself. Nil never splits.
	IsFunctionError func(error) bool
	SplitAfter      int
}

// ErrAbandoned reports that ctx ended before every message was stored; the
// messages left are unacknowledged and the broker delivers them again.
var ErrAbandoned = errors.New("delivery abandoned before every message was stored")

// Deliver invokes the function with batch and acks what it stored or
// rejected; messages named in batchItemFailures, or the whole batch after an
// invoke or function error, are sent again after a backoff. It returns nil
// once everything is acked, or ErrAbandoned when ctx ends first.
func (d *Deliverer) Deliver(ctx context.Context, batch []Item) error {
	pending := batch
	funcErrors := 0
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			d.Metrics.Retries.Add(float64(len(pending)))
			t := time.NewTimer(d.Backoff.Delay(attempt))
			select {
			case <-ctx.Done():
				t.Stop()
				return ErrAbandoned
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return ErrAbandoned
		}
		req := telemetry.BatchRequest{Messages: make([]telemetry.Message, len(pending))}
		for i, it := range pending {
			req.Messages[i] = it.Message
		}
		d.Metrics.Batches.Inc()
		start := time.Now()
		resp, err := d.Invoke(ctx, req)
		d.Metrics.InvokeLatency.Observe(time.Since(start).Seconds())
		if err != nil {
			d.Log.Warn("ingest invoke failed; will retry", "messages", len(pending), "attempt", attempt+1, "error", err)
			if d.IsFunctionError == nil || !d.IsFunctionError(err) {
				funcErrors = 0
				continue
			}
			if funcErrors++; funcErrors >= max(d.SplitAfter, 1) && len(pending) > 1 {
				half := len(pending) / 2
				d.Log.Warn("splitting a batch the function keeps failing on", "messages", len(pending))
				// Side by side, so the good half is not held behind the bad.
				var wg sync.WaitGroup
				errs := make([]error, 2)
				for i, part := range [][]Item{pending[:half], pending[half:]} {
					wg.Go(func() { errs[i] = d.Deliver(ctx, part) })
				}
				wg.Wait()
				return errors.Join(errs...)
			}
			continue
		}
		funcErrors = 0
		d.Log.Debug("ingest answered", "messages", len(pending), "accepted", resp.Accepted, "duplicates", resp.Duplicates,
			"rejected", resp.Rejected, "retry", len(resp.BatchItemFailures), "rejections", resp.Rejections)
		pending = d.settle(pending, resp)
		if len(pending) > 0 {
			d.Log.Info("ingest asked to retry messages", "messages", len(pending), "attempt", attempt+1)
		}
	}
	return nil
}

// settle acks every item the response does not name for retry and returns
// those it does.
func (d *Deliverer) settle(items []Item, resp telemetry.BatchResponse) (left []Item) {
	acked := items
	if len(resp.BatchItemFailures) > 0 {
		retry := make(map[string]bool, len(resp.BatchItemFailures))
		for _, f := range resp.BatchItemFailures {
			retry[f.ItemIdentifier] = true
		}
		acked = make([]Item, 0, len(items))
		for _, it := range items {
			if retry[it.Message.ID] {
				left = append(left, it)
			} else {
				acked = append(acked, it)
			}
		}
	}
	if len(resp.Rejections) > 0 {
		rejected := make(map[string]bool, len(resp.Rejections))
		for _, r := range resp.Rejections {
			rejected[r.ID] = true
		}
		n := 0
		for _, it := range acked {
			if rejected[it.Message.ID] {
				n++
			}
		}
		d.Metrics.Rejected.Add(float64(n))
	}
	if len(acked) > 0 {
		d.Ack(acked)
		d.Metrics.Acked.Add(float64(len(acked)))
	}
	return left
}
