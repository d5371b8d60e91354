// Package schedule runs template.yaml's Schedule events where there is no
// EventBridge: devstack and the compose gateway invoke each function on its
// rate, with the event's Input or EventBridge's Scheduled Event.
package schedule

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tempwatch/tempwatch/infra/gateway/apigw"
	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// Run is one enabled Schedule event and the interval it is run at.
type Run struct {
	sam.Schedule
	Every time.Duration
}

// Plan returns the enabled schedules with the interval each runs at: its
// rate, or every when set (a scale for tests and demos). An expression
// that cannot be run here (cron(), at()) is an error naming the function,
// the event and the expression, so a start fails rather than leave a job
// unrun unnoticed: every is only a scale, it does not make a cron runnable.
func Plan(schedules []sam.Schedule, every time.Duration) ([]Run, error) {
	var out []Run
	for _, sch := range schedules {
		if sch.Disabled {
			continue
		}
		d, err := sch.Interval()
		if err != nil {
			return nil, fmt.Errorf("template.yaml: %w", err)
		}
		if every > 0 {
			d = every
		}
		out = append(out, Run{Schedule: sch, Every: d})
	}
	return out, nil
}

// Scheduler invokes functions on their schedules until Stop.
type Scheduler struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start runs each of runs in its own loop through invoker: the first
// invocation one interval after the start, as EventBridge's first, then
// one per interval. An invocation still running when the next is due
// delays it (the ticker keeps one tick), so a slow function never has a
// schedule's invocations queue up without bound. logf says what failed.
func Start(runs []Run, invoker apigw.Invoker, logf func(format string, args ...any)) *Scheduler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Scheduler{cancel: cancel}
	for _, r := range runs {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTicker(r.Every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case at := <-t.C:
					_, err := invoker.Invoke(ctx, r.Function, Payload(r, at))
					if err != nil && ctx.Err() == nil {
						logf("%s: schedule %s failed: %v", r.Function, r.Event, err)
					}
				}
			}
		}()
	}
	return s
}

// Stop ends the loops, cancelling the invocations under way, and waits for
// them.
func (s *Scheduler) Stop() {
	s.cancel()
	s.wg.Wait()
}

// Account and region of the Scheduled Events' rule ARNs: the local
// stand-ins' (devstack's Invoke API answers for the same).
const (
	Account = "000000000000"
	Region  = "us-east-1"
)

// Payload is what EventBridge sends a schedule's target at at: the event's
// Input as written, or else its Scheduled Event.
func Payload(r Run, at time.Time) []byte {
	if r.Input != "" {
		return []byte(r.Input)
	}
	var id [16]byte
	for i := range id {
		id[i] = byte(rand.Uint32())
	}
	h := hex.EncodeToString(id[:])
	b, _ := json.Marshal(map[string]any{
		"version":     "0",
		"id":          h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:],
		"detail-type": "Scheduled Event",
		"source":      "aws.events",
		"account":     Account,
		"time":        at.UTC().Format(time.RFC3339),
		"region":      Region,
		"resources":   []string{"arn:aws:events:" + Region + ":" + Account + ":rule/" + r.Function + "-" + r.Event},
		"detail":      map[string]any{},
	})
	return b
}
