// Package batcher groups received messages into batches that close on size,
// on age, or when the stream goes quiet.
package batcher

import (
	"context"
	"time"

	"github.com/tempwatch/tempwatch/shared/telemetry"
)

// Item is a received message and the function that acknowledges it to the
// broker. Ack is called once the message is stored or rejected for good.
type Item struct {
	Message telemetry.Message
	Ack     func()
}

// Config says when a batch closes.
type Config struct {
	Size    int           // close when this many items are held
	Timeout time.Duration // close this long after the batch's first item
	// Idle closes a batch when no item arrived for this long (0: never).
	// Brokers cap unacknowledged deliveries per client (Mosquitto's
	// max_inflight_messages, 20 by default): once the window is full nothing
	// more arrives until we ack, so waiting out Timeout only adds latency.
	Idle time.Duration
}

// Run reads items from in and sends batches to out until in is closed or ctx
// is done; then it sends the open batch and whatever in still buffers (with
// blocking sends, so the consumer must keep reading until Run returns).
func Run(ctx context.Context, cfg Config, in <-chan Item, out chan<- []Item) {
	var (
		batch    []Item
		deadline <-chan time.Time
		timer    *time.Timer
		idle     *time.Timer
		idleC    <-chan time.Time
	)
	stopTimers := func() {
		if timer != nil {
			timer.Stop()
		}
		if idle != nil {
			idle.Stop()
		}
		deadline, idleC = nil, nil
	}
	flush := func() {
		stopTimers()
		if len(batch) > 0 {
			out <- batch
			batch = nil
		}
	}
	defer flush()
	for {
		select {
		case it, ok := <-in:
			if !ok {
				return
			}
			if batch == nil {
				batch = make([]Item, 0, cfg.Size)
				timer = time.NewTimer(cfg.Timeout)
				deadline = timer.C
			}
			batch = append(batch, it)
			if len(batch) >= cfg.Size {
				flush()
				continue
			}
			if cfg.Idle > 0 {
				if idle == nil {
					idle = time.NewTimer(cfg.Idle)
				} else {
					idle.Reset(cfg.Idle)
				}
				idleC = idle.C
			}
		case <-deadline:
			flush()
		case <-idleC:
			flush()
		case <-ctx.Done():
			// Take what was already handed over: it is received and would
			// otherwise wait for the broker's redelivery after reconnect.
			for {
				select {
				case it := <-in:
					batch = append(batch, it)
					if len(batch) >= cfg.Size {
						flush()
					}
				default:
					return
				}
			}
		}
	}
}
