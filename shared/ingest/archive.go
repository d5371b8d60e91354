package ingest

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

const (
	// outboxDrainRows is how many stashed archive calls one drain
	// transaction takes: small, so a drain cut short by its budget has
	// little to redo.
	outboxDrainRows = 8
	// archiveProbeTimeout bounds the ping that asks a down archive whether
	// it answers again. A missing server makes the driver wait out any
	// timeout, so the batch the probe rides on waits this long; a server
	// that is back answers within it once the driver has seen it (the
	// failed probe before has made the driver look).
	archiveProbeTimeout = 100 * time.Millisecond
)

// archivePinger is an archive that can tell cheaply whether it answers.
type archivePinger interface {
	Ping(ctx context.Context) error
}

// archiver writes raw payloads and dead letters to the archive (MongoDB)
// and, when the archive fails, to the outbox (PostgreSQL), which it drains
// back into the archive alongside later batches. Nothing reads the archive
// on the ingest path, so its outage must neither hold back readings nor
// lose what it should keep: a batch is answered once its archive entries
// are in either store.
//
// After an archive failure the archiver stops asking the archive (each
// attempt would wait out the timeout) and sends everything to the outbox,
// until a drain, at most one per DrainInterval per instance, finds it
// answering again: it pings it first when it can, then moves what waits.
// Drains run alongside a batch and the batch's answer waits for them, at
// most DrainBudget: under Lambda an instance is frozen between
// invocations, and a drain left running then would hold its row locks
// until the next one.
type archiver struct {
	archive tempwatch.PayloadArchive
	outbox  tempwatch.ArchiveOutbox // nil: a failed archive write is retried by the sender
	log     *slog.Logger
	timeout time.Duration
	every   time.Duration
	budget  time.Duration

	down atomic.Bool

	mu          sync.Mutex
	draining    bool
	nextDrain   time.Time
	lastWaitLog time.Time
}

// store writes ps and ds to the archive, or else to the outbox, and tells
// which of them reached neither: those messages are to be retried.
func (a *archiver) store(ctx context.Context, ps []tempwatch.RawPayload, ds []tempwatch.DeadLetter) (psLost, dsLost bool) {
	if len(ps) == 0 && len(ds) == 0 {
		return false, false
	}
	var stashPs []tempwatch.RawPayload
	var stashDs []tempwatch.DeadLetter
	if a.outbox != nil && a.down.Load() {
		stashPs, stashDs = ps, ds
	} else {
		actx, cancel := context.WithTimeout(ctx, a.timeout)
		var psErr, dsErr error
		var wg sync.WaitGroup
		if len(ps) > 0 {
			wg.Go(func() { psErr = a.archive.InsertRawPayloads(actx, ps) })
		}
		if len(ds) > 0 {
			wg.Go(func() { dsErr = a.archive.InsertDeadLetters(actx, ds) })
		}
		wg.Wait()
		cancel()
		if psErr == nil && dsErr == nil {
			return false, false
		}
		if psErr != nil {
			stashPs = ps
		}
		if dsErr != nil {
			stashDs = ds
		}
		if a.outbox == nil {
			a.log.ErrorContext(ctx, "store raw payloads and dead letters in MongoDB; their messages will be retried",
				"payloads_error", psErr, "dead_letters_error", dsErr, "payloads", len(stashPs), "dead_letters", len(stashDs))
			return psErr != nil, dsErr != nil
		}
		if !a.down.Swap(true) {
			a.log.WarnContext(ctx, "MongoDB archive unavailable: raw payloads and dead letters go to the PostgreSQL outbox until it answers again",
				"payloads_error", psErr, "dead_letters_error", dsErr)
		}
	}
	if err := a.outbox.Stash(ctx, stashPs, stashDs); err != nil {
		a.log.ErrorContext(ctx, "MongoDB archive and PostgreSQL outbox both failed; the messages will be retried",
			"error", err, "payloads", len(stashPs), "dead_letters", len(stashDs))
		return len(stashPs) > 0, len(stashDs) > 0
	}
	a.log.DebugContext(ctx, "kept in the archive outbox", "payloads", len(stashPs), "dead_letters", len(stashDs))
	return false, false
}

// drainAlongside starts a drain of the outbox if one is due, and returns
// the function that waits for it.
func (a *archiver) drainAlongside(ctx context.Context) (wait func()) {
	if a.outbox == nil {
		return func() {}
	}
	now := time.Now()
	a.mu.Lock()
	if a.draining || now.Before(a.nextDrain) {
		a.mu.Unlock()
		return func() {}
	}
	a.draining, a.nextDrain = true, now.Add(a.every)
	a.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.drain(ctx)
		a.mu.Lock()
		a.draining = false
		a.mu.Unlock()
	}()
	return func() { <-done }
}

// drain moves stashed calls into the archive until none are left, the
// archive fails, or the budget is spent.
func (a *archiver) drain(ctx context.Context) {
	if p, ok := a.archive.(archivePinger); ok && a.down.Load() {
		pctx, cancel := context.WithTimeout(ctx, min(archiveProbeTimeout, a.budget))
		err := p.Ping(pctx)
		cancel()
		if err != nil {
			a.logWaiting(ctx, 0, err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, a.budget)
	defer cancel()
	moved := 0
	var err error
	for ctx.Err() == nil {
		var n int
		n, err = a.outbox.Drain(ctx, a.archive, outboxDrainRows)
		moved += n
		if err != nil || n < outboxDrainRows {
			break
		}
	}
	spent := ctx.Err() != nil // a write cut short by the budget says nothing of the archive
	if moved > 0 || (err == nil && !spent) {
		if a.down.Swap(false) {
			a.log.InfoContext(ctx, "MongoDB archive answers again; raw payloads and dead letters go to it again")
		}
	}
	if moved == 0 && (err == nil || spent) {
		return
	}
	a.logWaiting(ctx, moved, err)
}

// logWaiting logs a drain's outcome with what still waits in the outbox:
// each drain that moved something, at most one in a while of those that
// found the archive still down.
func (a *archiver) logWaiting(ctx context.Context, moved int, err error) {
	if moved == 0 {
		a.mu.Lock()
		quiet := time.Since(a.lastWaitLog) < 30*time.Second
		if !quiet {
			a.lastWaitLog = time.Now()
		}
		a.mu.Unlock()
		if quiet {
			return
		}
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	defer cancel()
	waiting, perr := a.outbox.Pending(pctx)
	msg, level := "moved archive calls from the PostgreSQL outbox into MongoDB", slog.LevelInfo
	if moved == 0 {
		msg, level = "archive outbox waits for MongoDB", slog.LevelWarn
	}
	a.log.Log(ctx, level, msg, "moved_calls", moved, "error", err,
		"waiting_calls", waiting.Calls, "waiting_payloads", waiting.Payloads, "waiting_dead_letters", waiting.DeadLetters,
		"count_error", perr)
}
