package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// schedule is one Schedule event of a served function, as devstack runs it.
type schedule struct {
	sam.Schedule
	every time.Duration
}

// schedulesOf returns the enabled schedules of fns, each with the interval
// it runs at: its rate, or every when set (Config.ScheduleEvery). An
// expression devstack cannot run (cron(), at()) fails the start, naming
// the function and the expression, rather than leaving a job unrun
// unnoticed: every is only a scale, it does not make a cron runnable.
func schedulesOf(fns []sam.Function, every time.Duration) ([]schedule, error) {
	var out []schedule
	for _, fn := range fns {
		for _, sch := range fn.Schedules {
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
			out = append(out, schedule{Schedule: sch, every: d})
		}
	}
	return out, nil
}

// scheduler invokes functions on their schedules until stop.
type scheduler struct {
	s      *Stack
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    io.Writer
}

// startSchedules runs each schedule in its own loop: the first invocation
// one interval after the start, as EventBridge's first, then one per
// interval. An invocation still running when the next is due delays it
// (the ticker keeps one tick), so a slow function never has a schedule's
// invocations queue up without bound; EventBridge would invoke it again at
// once, but devstack's instances are few.
func (s *Stack) startSchedules() {
	if len(s.schedules) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	sc := &scheduler{s: s, ctx: ctx, cancel: cancel,
		log: &prefixWriter{w: s.cfg.Logs, mu: &logMu, prefix: "[scheduler] "}}
	for _, sch := range s.schedules {
		fmt.Fprintf(sc.log, "%s: %s every %s (%s)\n", sch.Function, sch.Event, sch.every, sch.Expression)
		sc.wg.Add(1)
		go sc.run(sch)
	}
	s.scheduler = sc
}

func (sc *scheduler) run(sch schedule) {
	defer sc.wg.Done()
	t := time.NewTicker(sch.every)
	defer t.Stop()
	for {
		select {
		case <-sc.ctx.Done():
			return
		case at := <-t.C:
			sc.invoke(sch, at)
		}
	}
}

// invoke runs one scheduled invocation and says when it failed.
func (sc *scheduler) invoke(sch schedule, at time.Time) {
	out, funcErr, err := sc.s.Invoke(sc.ctx, sch.Function, scheduledPayload(sch, at))
	switch {
	case err != nil && sc.ctx.Err() != nil:
		// Stopping: the invocation was cut short by Close.
	case err != nil:
		fmt.Fprintf(sc.log, "%s: %s not invoked: %v\n", sch.Function, sch.Event, err)
	case funcErr:
		fmt.Fprintf(sc.log, "%s: %s failed: %s\n", sch.Function, sch.Event, out)
	}
}

// stop ends the loops and waits for the invocations under way.
func (sc *scheduler) stop() {
	sc.cancel()
	sc.wg.Wait()
}

// scheduledPayload is what EventBridge sends a schedule's target: the
// event's Input as written, or else its Scheduled Event.
func scheduledPayload(sch schedule, at time.Time) []byte {
	if sch.Input != "" {
		return []byte(sch.Input)
	}
	b, _ := json.Marshal(map[string]any{
		"version":     "0",
		"id":          newID(),
		"detail-type": "Scheduled Event",
		"source":      "aws.events",
		"account":     accountID,
		"time":        at.UTC().Format(time.RFC3339),
		"region":      region,
		"resources":   []string{"arn:aws:events:" + region + ":" + accountID + ":rule/" + sch.Function + "-" + sch.Event},
		"detail":      map[string]any{},
	})
	return b
}
