package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// recordingArchive records the calls it takes; fail, when set, decides
// which to refuse.
type recordingArchive struct {
	mu       sync.Mutex
	payloads [][]tempwatch.RawPayload
	dead     [][]tempwatch.DeadLetter
	fail     func(ps []tempwatch.RawPayload) error
	after    func() // runs after each accepted call
}

func (a *recordingArchive) InsertRawPayloads(ctx context.Context, ps []tempwatch.RawPayload) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if a.fail != nil {
		if err := a.fail(ps); err != nil {
			return err
		}
	}
	a.mu.Lock()
	a.payloads = append(a.payloads, ps)
	a.mu.Unlock()
	if a.after != nil {
		a.after()
	}
	return nil
}

func (a *recordingArchive) InsertDeadLetters(ctx context.Context, ds []tempwatch.DeadLetter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	a.dead = append(a.dead, ds)
	a.mu.Unlock()
	return nil
}

func payloadCall(sensor string, n int) []tempwatch.RawPayload {
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	ps := make([]tempwatch.RawPayload, n)
	for i := range ps {
		ps[i] = tempwatch.RawPayload{SensorID: sensor, MeasuredAt: at.Add(time.Duration(i) * time.Microsecond),
			Topic: "tempwatch/acme/sensors/" + sensor + "/readings", Source: "mqtt",
			ReceivedAt: at.Add(time.Duration(i)*time.Second + 789), Raw: fmt.Appendf(nil, `{"value":%d}`, i)}
	}
	return ps
}

// What is stashed comes back from a drain exactly as it went in, call by
// call, oldest first, and leaves the outbox.
func TestArchiveOutboxRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := postgres.NewArchiveOutbox(pgtest.MustDB(t))

	ps := payloadCall("s1", 3)
	ds := []tempwatch.DeadLetter{
		{MessageID: "m1", ClientID: "c1", SensorID: "s1", Reason: "payload is larger than 65536 bytes", Topic: "t", Source: "mqtt",
			ReceivedAt: time.Date(2026, 3, 4, 5, 6, 7, 1, time.UTC), Raw: []byte{0, 1, 2, 0xff}, Size: 10 << 20},
		{MessageID: "m2", Reason: "payload is not JSON", Topic: "x", Source: "http",
			ReceivedAt: time.Date(2026, 3, 4, 5, 6, 8, 0, time.UTC), Raw: make([]byte, 300<<10)},
	}
	require.NoError(t, o.Stash(ctx, ps, ds))
	later := []tempwatch.DeadLetter{{MessageID: "m3", Reason: "r", Topic: "t", Source: "mqtt", ReceivedAt: ds[1].ReceivedAt, Raw: []byte("x")}}
	require.NoError(t, o.Stash(ctx, nil, later))
	require.NoError(t, o.Stash(ctx, nil, nil), "nothing to keep is no row")

	pending, err := o.Pending(ctx)
	require.NoError(t, err)
	assert.Equal(t, tempwatch.OutboxPending{Calls: 3, Payloads: 3, DeadLetters: 3}, pending)

	a := &recordingArchive{}
	moved, err := o.Drain(ctx, a, 10)
	require.NoError(t, err)
	assert.Equal(t, 3, moved)
	assert.Equal(t, [][]tempwatch.RawPayload{ps}, a.payloads)
	assert.Equal(t, [][]tempwatch.DeadLetter{ds, later}, a.dead, "dead letters whole (their ids hash every byte), in stash order")

	pending, err = o.Pending(ctx)
	require.NoError(t, err)
	assert.Equal(t, tempwatch.OutboxPending{}, pending)
	moved, err = o.Drain(ctx, a, 10)
	require.NoError(t, err)
	assert.Zero(t, moved, "an empty outbox drains nothing")
}

// A refused call stays, its attempt counted, and stops the drain; the next
// drain takes the untried calls first, so one call the archive keeps
// refusing does not hold the others back.
func TestArchiveOutboxDrainFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustDB(t)
	o := postgres.NewArchiveOutbox(db)
	for _, sensor := range []string{"poison", "s2", "s3"} {
		require.NoError(t, o.Stash(ctx, payloadCall(sensor, 2), nil))
	}
	down := errors.New("archive down")
	a := &recordingArchive{fail: func([]tempwatch.RawPayload) error { return down }}
	moved, err := o.Drain(ctx, a, 10)
	assert.ErrorIs(t, err, down)
	assert.Zero(t, moved)
	pending, err := o.Pending(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, pending.Calls, "nothing is lost to a failed drain")
	var attempts int
	var lastError string
	require.NoError(t, db.QueryRow(ctx, `SELECT attempts, last_error FROM archive_outbox ORDER BY id LIMIT 1`).Scan(&attempts, &lastError))
	assert.Equal(t, 1, attempts)
	assert.Contains(t, lastError, "archive down")

	a.fail = func(ps []tempwatch.RawPayload) error {
		if ps[0].SensorID == "poison" {
			return down
		}
		return nil
	}
	moved, err = o.Drain(ctx, a, 10)
	assert.ErrorIs(t, err, down)
	assert.Equal(t, 2, moved, "the untried calls went first")
	require.Len(t, a.payloads, 2)
	assert.Equal(t, "s2", a.payloads[0][0].SensorID)
	assert.Equal(t, "s3", a.payloads[1][0].SensorID)
	pending, err = o.Pending(ctx)
	require.NoError(t, err)
	assert.Equal(t, tempwatch.OutboxPending{Calls: 1, Payloads: 2}, pending)
}

// A drain whose context ends after a call was archived still deletes that
// call, so it is not archived again.
func TestArchiveOutboxDrainCutShort(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	o := postgres.NewArchiveOutbox(db)
	require.NoError(t, o.Stash(context.Background(), payloadCall("s1", 1), nil))
	require.NoError(t, o.Stash(context.Background(), payloadCall("s2", 1), nil))
	ctx, cancel := context.WithCancel(context.Background())
	a := &recordingArchive{after: cancel}
	moved, err := o.Drain(ctx, a, 10)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, moved)
	require.Len(t, a.payloads, 1)
	assert.Equal(t, "s1", a.payloads[0][0].SensorID)
	var left string
	require.NoError(t, db.QueryRow(context.Background(), `SELECT convert_from(body, 'UTF8') FROM archive_outbox`).Scan(&left))
	assert.Contains(t, left, `"sensor_id":"s2"`, "the archived call was deleted, the other kept")
}

// Instances draining at once take different rows: every call is archived
// exactly once.
func TestArchiveOutboxConcurrentDrains(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := postgres.NewArchiveOutbox(pgtest.MustDB(t))
	const calls = 40
	for i := range calls {
		require.NoError(t, o.Stash(ctx, payloadCall(fmt.Sprintf("s%02d", i), 1), nil))
	}
	a := &recordingArchive{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				n, err := o.Drain(ctx, a, 3)
				if !assert.NoError(t, err) || n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, ps := range a.payloads {
		seen[ps[0].SensorID]++
	}
	assert.Len(t, seen, calls)
	for sensor, n := range seen {
		assert.Equal(t, 1, n, "call of %s archived %d times", sensor, n)
	}
	pending, err := o.Pending(ctx)
	require.NoError(t, err)
	assert.Zero(t, pending.Calls)
}
