// Package delivery hands batches to the ingest function and acknowledges each
// message once the function stored it or rejected it for good; everything
// else is retried with backoff and stays unacknowledged, except a message
// that keeps failing on its own account: that one is refused, handed over
// as a dead letter, and acknowledged once the function has stored that.
//
// It knows nothing of MQTT: each item carries a receipt of the caller's
// type (the bridge's is an mqtt.Ack), which delivery only hands back to the
// Ack function it was given.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tempwatch/tempwatch/bridge/metrics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// InvokeFunc sends one batch to the ingest function.
type InvokeFunc func(ctx context.Context, req tempwatch.BatchRequest) (tempwatch.BatchResponse, error)

// Item is a received message and its receipt: what acknowledges it to
// the broker, of a type delivery never looks into.
type Item[R any] struct {
	Message tempwatch.Message
	Receipt R
}

// Deliverer retries a batch until every message is acknowledged.
type Deliverer[R any] struct {
	Invoke InvokeFunc
	// Ack acknowledges items the function stored or rejected for good, all
	// at once; each item is passed to it exactly once.
	Ack     func([]Item[R])
	Backoff Backoff
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// IsFunctionError tells an error the function raised on this input (a
	// crash, a timeout) from one reaching it (network, throttling). A batch
	// the function fails on is split in two and the halves delivered side
	// by side, so one message that crashes the function holds back only
	// itself. Nil never splits.
	IsFunctionError func(error) bool
	// IsTooLarge tells the Invoke API's refusal of a request as too large:
	// such a batch is split at once, and a message refused alone is sent
	// refused (its head only). Nil never splits.
	IsTooLarge func(error) bool
	// MaxAttempts bounds the failed attempts a message may cost on its own
	// account (see blame) before it is refused; 0 never refuses.
	MaxAttempts int
	// Concurrency bounds the invocations under way at once; 0 is no bound.
	// A delivery waiting out a backoff holds no slot, so batches the
	// function keeps failing on never stop the others from being invoked.
	Concurrency int

	once  sync.Once
	slots chan struct{}
	// stored is when an answer last reported a message stored (as time
	// since epoch): evidence that the function works.
	stored atomic.Int64
}

// epoch makes stored monotonic.
var epoch = time.Now()

// ErrAbandoned reports that ctx ended before every message was stored; the
// messages left are unacknowledged and the broker delivers them again.
var ErrAbandoned = errors.New("delivery abandoned before every message was stored")

// Deliver invokes the function with batch and acks what it stored or
// rejected; messages named in batchItemFailures, or the whole batch after
// an invoke or function error, are sent again after a backoff. It returns
// nil once everything is acked, or ErrAbandoned when ctx ends first.
func (d *Deliverer[R]) Deliver(ctx context.Context, batch []Item[R]) error {
	d.once.Do(func() {
		if d.Concurrency > 0 {
			d.slots = make(chan struct{}, d.Concurrency)
		}
	})
	return d.deliver(ctx, part[R]{items: batch})
}

// part is what one deliver call settles: a batch, or a piece of one.
type part[R any] struct {
	items []Item[R]
	// strikes counts, item by item, the failed attempts that were the
	// item's own fault; nil while there are none, so a batch that goes
	// through costs nothing for it.
	strikes []int
	// failures counts the attempts on items that failed in a row, and
	// paces the backoff.
	failures int
	// since, unless zero, is when the last of those attempts began: what
	// the function stored from then on shows it works, so that the
	// failures are the items' own.
	since time.Time
}

// deliver settles p.items.
func (d *Deliverer[R]) deliver(ctx context.Context, p part[R]) error {
	items, strikes, failures, since := p.items, p.strikes, p.failures, p.since
	resent := !since.IsZero()
	for len(items) > 0 {
		if failures > 0 && !sleep(ctx, d.Backoff.Delay(failures)) {
			return ErrAbandoned
		}
		if resent {
			d.Metrics.Retries.Add(float64(len(items)))
		}
		resent = true
		start, resp, err := d.invoke(ctx, items)
		if err != nil && ctx.Err() != nil {
			return ErrAbandoned
		}
		if since.IsZero() {
			since = start
		}
		window := since
		since = start
		switch {
		case err == nil:
			d.Log.Debug("ingest answered", "messages", len(items), "accepted", resp.Accepted, "duplicates", resp.Duplicates,
				"rejected", resp.Rejected, "retry", len(resp.BatchItemFailures), "rejections", resp.Rejections)
			items, strikes = d.settle(items, strikes, resp)
			if len(items) == 0 {
				return nil
			}
			d.Log.Info("ingest asked to retry messages", "messages", len(items), "attempt", failures+1)
			strikes = d.blame(items, strikes, d.worksSince(window), "the function asked to retry it (batchItemFailures)")
			failures++
		case d.IsTooLarge != nil && d.IsTooLarge(err):
			if len(items) > 1 {
				d.Log.Warn("splitting a batch the Invoke API refused as too large", "messages", len(items), "error", err)
				return d.split(ctx, part[R]{items: items, strikes: strikes, since: start})
			}
			if items[0].Message.Refused == "" {
				d.refuse(&items[0], metrics.RefusedInvokeTooLarge,
					"the Invoke API refused the message alone as too large: "+err.Error())
				continue
			}
			// Its head cannot be too large but for a broken limit: the
			// dead letter is not given up on either.
			d.Log.Error("the Invoke API refused a refused message as too large; will retry", "id", items[0].Message.ID, "error", err)
			failures++
		case d.IsFunctionError != nil && d.IsFunctionError(err):
			d.Log.Warn("ingest function failed; will retry", "messages", len(items), "attempt", failures+1, "error", err)
			works := d.worksSince(window)
			if len(items) > 1 {
				// On the first error: the others must not wait behind the
				// message at fault. While the function shows no sign of
				// working, though, it may be failing on everything; the
				// halves then wait a backoff, so that an outage does not
				// turn every batch into a storm of single invocations.
				next := part[R]{items: items, strikes: strikes, since: start}
				if !works {
					next.failures = failures + 1
				}
				return d.split(ctx, next)
			}
			strikes = d.blame(items, strikes, works, err.Error())
			failures++
		default:
			d.Log.Warn("ingest invoke failed; will retry", "messages", len(items), "attempt", failures+1, "error", err)
			failures++
		}
	}
	return nil
}

// split delivers the halves of p side by side, so the good half is not
// held behind the bad.
func (d *Deliverer[R]) split(ctx context.Context, p part[R]) error {
	half := len(p.items) / 2
	halves := []part[R]{p, p}
	halves[0].items, halves[1].items = p.items[:half], p.items[half:]
	if p.strikes != nil {
		halves[0].strikes, halves[1].strikes = p.strikes[:half], p.strikes[half:]
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, h := range halves {
		wg.Go(func() { errs[i] = d.deliver(ctx, h) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// invoke sends items once a slot is free, and returns when it sent them.
func (d *Deliverer[R]) invoke(ctx context.Context, items []Item[R]) (time.Time, tempwatch.BatchResponse, error) {
	if d.slots != nil {
		select {
		case d.slots <- struct{}{}:
			defer func() { <-d.slots }()
		case <-ctx.Done():
			return time.Now(), tempwatch.BatchResponse{}, ctx.Err()
		}
	}
	req := tempwatch.BatchRequest{Messages: make([]tempwatch.Message, len(items))}
	for i, it := range items {
		req.Messages[i] = it.Message
	}
	d.Metrics.Batches.Inc()
	d.Metrics.BatchMessages.Observe(float64(len(items)))
	start := time.Now()
	resp, err := d.Invoke(ctx, req)
	d.Metrics.InvokeLatency.Observe(time.Since(start).Seconds())
	return start, resp, err
}

// worksSince reports whether an answer since t reported a message stored.
func (d *Deliverer[R]) worksSince(t time.Time) bool {
	return d.stored.Load() > int64(t.Sub(epoch))
}

// blame counts a failed attempt against each of items, when it was their
// own fault: when the function stored other messages meanwhile (in the
// same answer, or in any other since the attempt before), it works, and
// fails on these. A failure while nothing is stored anywhere (the database
// or the function down for every message) counts against none. An item out
// of attempts is refused. A refused item is never blamed: its dead letter
// is retried until the function stores it. It returns the items' strikes.
func (d *Deliverer[R]) blame(items []Item[R], strikes []int, own bool, why string) []int {
	if !own || d.MaxAttempts <= 0 {
		return strikes
	}
	if strikes == nil {
		strikes = make([]int, len(items))
	}
	for i := range items {
		it := &items[i]
		if it.Message.Refused != "" {
			continue
		}
		if strikes[i]++; strikes[i] >= d.MaxAttempts {
			d.refuse(it, metrics.RefusedMaxAttempts, fmt.Sprintf("failed %d attempts; last error: %s", strikes[i], why))
		}
	}
	return strikes
}

// refuse makes it a refused message, to be dead-lettered with reason.
func (d *Deliverer[R]) refuse(it *Item[R], class, reason string) {
	it.Message = Refuse(it.Message, len(it.Message.Payload), reason)
	d.Metrics.Refused.WithLabelValues(class).Inc()
	d.Log.Warn("refused a message; it goes to the dead letters", "id", it.Message.ID, "topic", it.Message.Topic,
		"size", it.Message.Size, "reason", it.Message.Refused)
}

// maxReasonBytes bounds a refusal's reason: it quotes errors, and the
// function's error message can be as long as its answer.
const maxReasonBytes = 1 << 10

// Refuse returns m refused for reason: m.Payload cut to a copy of its
// first tempwatch.RefusedHeadBytes, and size the payload's full length (m
// may already hold only its head).
func Refuse(m tempwatch.Message, size int, reason string) tempwatch.Message {
	if len(m.Payload) > tempwatch.RefusedHeadBytes {
		m.Payload = append([]byte(nil), m.Payload[:tempwatch.RefusedHeadBytes]...)
	}
	m.Refused, m.Size = tempwatch.Truncate(reason, maxReasonBytes), size
	return m
}

// sleep waits for d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// settle acks every item the response does not name for retry and returns
// those it does, with their strikes (strikes is nil or items'). An answer
// that stored any of items is recorded as evidence that the function works.
func (d *Deliverer[R]) settle(items []Item[R], strikes []int, resp tempwatch.BatchResponse) (left []Item[R], leftStrikes []int) {
	acked := items
	if len(resp.BatchItemFailures) > 0 {
		retry := make(map[string]bool, len(resp.BatchItemFailures))
		for _, f := range resp.BatchItemFailures {
			retry[f.ItemIdentifier] = true
		}
		acked = make([]Item[R], 0, len(items))
		for i, it := range items {
			if retry[it.Message.ID] {
				left = append(left, it)
				if strikes != nil {
					leftStrikes = append(leftStrikes, strikes[i])
				}
			} else {
				acked = append(acked, it)
			}
		}
	}
	stored := len(acked)
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
		stored -= n
	}
	if stored > 0 {
		now := int64(time.Since(epoch))
		for old := d.stored.Load(); now > old && !d.stored.CompareAndSwap(old, now); old = d.stored.Load() {
		}
	}
	d.Metrics.Duplicates.Add(float64(resp.Duplicates))
	if len(acked) > 0 {
		d.Ack(acked)
		d.Metrics.Acked.Add(float64(len(acked)))
		now := time.Now()
		for _, it := range acked {
			if !it.Message.ReceivedAt.IsZero() {
				d.Metrics.AckDelay.Observe(now.Sub(it.Message.ReceivedAt).Seconds())
			}
		}
	}
	return left, leftStrikes
}
