// Package silence is the scheduled silence sweep: every run opens a silent
// alarm for each sensor that has sent nothing for its silence threshold
// (tempwatch.SilenceSweep), counts them and logs how many. The next reading
// of such a sensor clears its alarm at ingest.
package silence

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// ErrNotScheduled is the answer to an event that is not EventBridge's
// Scheduled Event, so a mis-wired trigger shows in the function's errors
// instead of passing as a sweep.
var ErrNotScheduled = errors.New(`silence: the event is not a scheduled event ({"source":"aws.events","detail-type":"Scheduled Event"})`)

// Sweeper runs the sweep on each scheduled event.
type Sweeper struct {
	sweep tempwatch.SilenceSweep
	log   *slog.Logger
	now   func() time.Time
}

// NewSweeper returns a Sweeper over sweep, logging to log.
func NewSweeper(sweep tempwatch.SilenceSweep, log *slog.Logger) *Sweeper {
	return &Sweeper{sweep: sweep, log: log, now: time.Now}
}

// Result is the answer to a scheduled invocation.
type Result struct {
	Opened int `json:"opened"`
}

// HandleEvent serves the schedule's invocations: it opens the silences due
// now. The sweep's clock is the function's, not the event's time: a
// delivery that came late still sweeps up to the present.
func (s *Sweeper) HandleEvent(ctx context.Context, event json.RawMessage) (any, error) {
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(event, &ev); err != nil || ev.Source != "aws.events" || ev.DetailType != "Scheduled Event" {
		return nil, ErrNotScheduled
	}
	start := s.now()
	opened, err := s.sweep.OpenSilentAlarms(ctx, start)
	// What a failed sweep opened before it failed is committed: count it.
	metrics.Add(ctx, metrics.AlarmsOpened, float64(opened), tempwatch.AlarmSilent)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "silence sweep", "opened", opened, "duration", time.Since(start).String())
	return Result{Opened: opened}, nil
}
