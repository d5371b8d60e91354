package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// SweepTask is the task of the scheduled event that sweeps expired dead
// letters: template.yaml's schedule sends {"task": SweepTask}.
const SweepTask = "expire-dead-letters"

// Sweep bounds: a cold start deletes at most a batch before serving, a
// scheduled sweep at most SweepLimit, so neither outlasts its invocation
// however much has expired; what is left waits for the next sweep.
const (
	StartSweepLimit = 1000
	SweepLimit      = 20000
)

// Expiry deletes dead letters past their time to live. MongoDB does it
// itself with a TTL index; FerretDB has none, so the sweep is what deletes
// there. Both run: the sweep costs little where the index already deleted.
// Readers hide expired dead letters either way (Deps.TTL).
type Expiry struct {
	store tempwatch.DeadLetterExpiry
	ttl   time.Duration
	log   *slog.Logger
	now   func() time.Time
}

// NewExpiry returns the expiry of dead letters older than ttl in store.
func NewExpiry(store tempwatch.DeadLetterExpiry, ttl time.Duration, log *slog.Logger) *Expiry {
	return &Expiry{store: store, ttl: ttl, log: log, now: time.Now}
}

// Prepare runs at start-up: it asks the server for a TTL index and sweeps
// what expired meanwhile. A failure is logged: reads still hide expired
// dead letters, and the next sweep deletes them.
func (e *Expiry) Prepare(ctx context.Context) {
	indexed, err := e.store.EnsureDeadLetterTTL(ctx, e.ttl)
	if err != nil {
		e.log.WarnContext(ctx, "dead letter TTL index", "error", err)
	} else if !indexed {
		e.log.InfoContext(ctx, "the server has no TTL indexes: expired dead letters are deleted by sweeps only")
	}
	if _, _, err := e.Sweep(ctx, StartSweepLimit); err != nil {
		e.log.WarnContext(ctx, "sweep expired dead letters", "error", err)
	}
}

// Sweep deletes up to limit dead letters received more than the TTL ago and
// reports how many, and whether it stopped at the limit (more may remain).
func (e *Expiry) Sweep(ctx context.Context, limit int) (deleted int, more bool, err error) {
	deleted, err = e.store.SweepDeadLetters(ctx, e.now().Add(-e.ttl), limit)
	if deleted > 0 {
		e.log.InfoContext(ctx, "expired dead letters deleted", "deleted", deleted, "ttl", e.ttl.String())
	}
	return deleted, deleted >= limit, err
}

// SweepResult is the answer to a scheduled sweep.
type SweepResult struct {
	Deleted int  `json:"deleted"`
	More    bool `json:"more"`
}

// HandleEvent serves the function's non-HTTP invocations: the scheduled
// {"task": SweepTask}. Any other event is an error, so a mis-wired trigger
// shows in the function's errors instead of passing as done.
func (e *Expiry) HandleEvent(ctx context.Context, event json.RawMessage) (any, error) {
	var ev struct {
		Task string `json:"task"`
	}
	if err := json.Unmarshal(event, &ev); err != nil || ev.Task != SweepTask {
		return nil, fmt.Errorf("archive: event is neither an API Gateway request nor {\"task\":%q}", SweepTask)
	}
	deleted, more, err := e.Sweep(ctx, SweepLimit)
	if err != nil {
		return nil, err
	}
	return SweepResult{Deleted: deleted, More: more}, nil
}
