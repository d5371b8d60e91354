package mock

import (
	"context"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var (
	_ tempwatch.DeadLetterReader = (*DeadLetterReader)(nil)
	_ tempwatch.DeadLetterExpiry = (*DeadLetterExpiry)(nil)
	_ tempwatch.PayloadFinder    = (*PayloadFinder)(nil)
)

// DeadLetterReader is a fake tempwatch.DeadLetterReader.
type DeadLetterReader struct {
	FindDeadLettersFn    func(ctx context.Context, f tempwatch.DeadLetterFilter) ([]tempwatch.StoredDeadLetter, error)
	FindDeadLetterByIDFn func(ctx context.Context, id string) (tempwatch.StoredDeadLetter, error)
}

// FindDeadLetters calls FindDeadLettersFn.
func (r *DeadLetterReader) FindDeadLetters(ctx context.Context, f tempwatch.DeadLetterFilter) ([]tempwatch.StoredDeadLetter, error) {
	return r.FindDeadLettersFn(ctx, f)
}

// FindDeadLetterByID calls FindDeadLetterByIDFn.
func (r *DeadLetterReader) FindDeadLetterByID(ctx context.Context, id string) (tempwatch.StoredDeadLetter, error) {
	return r.FindDeadLetterByIDFn(ctx, id)
}

// DeadLetterExpiry is a fake tempwatch.DeadLetterExpiry.
type DeadLetterExpiry struct {
	EnsureDeadLetterTTLFn func(ctx context.Context, ttl time.Duration) (bool, error)
	SweepDeadLettersFn    func(ctx context.Context, cutoff time.Time, max int) (int, error)
}

// EnsureDeadLetterTTL calls EnsureDeadLetterTTLFn.
func (e *DeadLetterExpiry) EnsureDeadLetterTTL(ctx context.Context, ttl time.Duration) (bool, error) {
	return e.EnsureDeadLetterTTLFn(ctx, ttl)
}

// SweepDeadLetters calls SweepDeadLettersFn.
func (e *DeadLetterExpiry) SweepDeadLetters(ctx context.Context, cutoff time.Time, max int) (int, error) {
	return e.SweepDeadLettersFn(ctx, cutoff, max)
}

// PayloadFinder is a fake tempwatch.PayloadFinder.
type PayloadFinder struct {
	FindPayloadFn func(ctx context.Context, sensorID string, measuredAt time.Time) (tempwatch.RawPayload, error)
}

// FindPayload calls FindPayloadFn.
func (f *PayloadFinder) FindPayload(ctx context.Context, sensorID string, measuredAt time.Time) (tempwatch.RawPayload, error) {
	return f.FindPayloadFn(ctx, sensorID, measuredAt)
}
