package redis_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// countingCutoffs is a TokenCutoffs counting its lookups.
type countingCutoffs struct {
	next  tempwatch.TokenCutoffs
	calls atomic.Int64
}

func (c *countingCutoffs) TokensValidAfter(ctx context.Context, id string) (time.Time, error) {
	c.calls.Add(1)
	return c.next.TokensValidAfter(ctx, id)
}

// A change written through by one instance is what every instance reads:
// the instance that made it at once, another within CutoffLocalTTL (its
// copy in memory), and neither asks PostgreSQL again for it.
func TestTokenCutoffsWriteThrough(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustDB(t)
	rc := redistest.MustAdapter(t)
	pgUsers := postgres.NewUserStore(db)
	pg := &countingCutoffs{next: pgUsers}
	users := redis.NewTokenCutoffs(rc, pg) // the users function's instance
	other := redis.NewTokenCutoffs(rc, pg) // another function's instance
	u := &tempwatch.User{Email: "ops@acme.example", Role: tempwatch.RoleClientAdmin,
		ClientID: pgtest.MustClient(t, db, "acme", ""), PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$a2V5"}
	require.NoError(t, pgUsers.CreateUser(ctx, u))

	first, err := other.TokensValidAfter(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, u.TokensValidAfter.UnixMicro(), first.UnixMicro())
	_, err = users.TokensValidAfter(ctx, u.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 1, pg.calls.Load(), "the second instance found the first one's copy in Redis")

	u.Role = tempwatch.RoleViewer
	require.NoError(t, users.Users(pgUsers).UpdateUser(ctx, u))
	changed := time.Now()
	got, err := users.TokensValidAfter(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, u.TokensValidAfter.UnixMicro(), got.UnixMicro(), "the changing instance reads its change at once")
	assert.Greater(t, got.UnixMicro(), first.UnixMicro())
	require.Eventually(t, func() bool {
		c, err := other.TokensValidAfter(ctx, u.ID)
		return err == nil && c.UnixMicro() == got.UnixMicro()
	}, 3*redis.CutoffLocalTTL, 10*time.Millisecond)
	assert.LessOrEqual(t, time.Since(changed), redis.CutoffLocalTTL+500*time.Millisecond, "another instance reads the change within its memory's lifetime")
	assert.EqualValues(t, 1, pg.calls.Load(), "the change reached it through Redis")

	require.NoError(t, users.Users(pgUsers).DeleteUser(ctx, u.ID))
	_, err = users.TokensValidAfter(ctx, u.ID)
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "a deleted user has no cutoff: %v", err)
	fresh := redis.NewTokenCutoffs(rc, &mock.TokenCutoffs{}) // a call to the store would panic
	_, err = fresh.TokensValidAfter(ctx, u.ID)
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "the deletion is in Redis: %v", err)
}

// A lookup that read the old cutoff before a change committed cannot put it
// back after the change's write: Redis and memory keep the later one.
func TestTokenCutoffsNeverGoBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rc := redistest.MustAdapter(t)
	id := "4b0c4a53-0c48-4f53-9c3e-6d8d4f6f1d11"
	old, changed := time.UnixMicro(1_000_000), time.Now().Truncate(time.Microsecond)
	writer := redis.NewTokenCutoffs(rc, &mock.TokenCutoffs{})
	slow := redis.NewTokenCutoffs(rc, &mock.TokenCutoffs{TokensValidAfterFn: func(context.Context, string) (time.Time, error) {
		writer.Publish(ctx, map[string]time.Time{id: changed}) // the change commits while the lookup is under way
		return old, nil
	}})
	got, err := slow.TokensValidAfter(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, changed.UnixMicro(), got.UnixMicro(), "the slow lookup answers the later cutoff Redis kept")
	reader := redis.NewTokenCutoffs(rc, &mock.TokenCutoffs{})
	got, err = reader.TokensValidAfter(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, changed.UnixMicro(), got.UnixMicro(), "Redis holds the later cutoff")

	writer.Publish(ctx, map[string]time.Time{id: old})
	got, err = writer.TokensValidAfter(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, changed.UnixMicro(), got.UnixMicro(), "an earlier cutoff never replaces a later one")
	writer.PublishGone(ctx, id)
	writer.Publish(ctx, map[string]time.Time{id: changed.Add(time.Hour)})
	_, err = redis.NewTokenCutoffs(rc, &mock.TokenCutoffs{}).TokensValidAfter(ctx, id)
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "gone stays gone: %v", err)
}

// With Redis down every lookup asks the store behind, and the store's
// failure reaches the caller: never an answer without the record.
func TestTokenCutoffsWithoutRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rc, err := redis.Open(redistest.DeadURL(t), redis.Options{Prefix: "dead:"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	cutoff := time.Now().Truncate(time.Microsecond)
	down := errors.New("postgres down")
	var pgDown atomic.Bool
	c := redis.NewTokenCutoffs(rc, &mock.TokenCutoffs{TokensValidAfterFn: func(context.Context, string) (time.Time, error) {
		if pgDown.Load() {
			return time.Time{}, down
		}
		return cutoff, nil
	}})
	got, err := c.TokensValidAfter(ctx, "u1")
	require.NoError(t, err)
	assert.Equal(t, cutoff.UnixMicro(), got.UnixMicro(), "read from the store behind")
	assert.Contains(t, rc.Degraded(), "cutoff.get")

	pgDown.Store(true)
	_, err = c.TokensValidAfter(ctx, "u2")
	assert.ErrorIs(t, err, down, "PostgreSQL down too: the error reaches the caller")
}

// TestTokenChecksAnswerBoth: one call gives the user's cutoff and the
// session's state, each from memory, Redis (once another instance put it
// there) or the next store; an ended session stays ended though a fill read
// it live; without Redis both come from the next stores, and a next store
// that fails too hands its error to the caller.
func TestTokenChecksAnswerBoth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cutoff := time.UnixMicro(time.Now().UnixMicro())
	pg := &countingCutoffs{next: &mock.TokenCutoffs{TokensValidAfterFn: func(context.Context, string) (time.Time, error) {
		return cutoff, nil
	}}}
	var sessionsDown atomic.Bool
	pgSessions := &countingCutoffs{next: &mock.TokenCutoffs{TokensValidAfterFn: func(context.Context, string) (time.Time, error) {
		if sessionsDown.Load() {
			return time.Time{}, errors.New("postgres down")
		}
		return time.UnixMicro(0), nil
	}}}
	rc := redistest.MustAdapter(t)
	redis.NewTokenCutoffs(rc, pg).Publish(ctx, map[string]time.Time{"u1": cutoff})
	redis.NewSessionStates(rc, pgSessions).PublishGone(ctx, "sess-ended")
	checks := redis.NewTokenChecks(redis.NewTokenCutoffs(rc, pg), redis.NewSessionStates(rc, pgSessions))

	st := checks.CheckToken(ctx, "u1", "sess-ended")
	assert.Equal(t, cutoff, st.ValidAfter)
	assert.NoError(t, st.CutoffErr)
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(st.SessionErr), "ended, from Redis")
	assert.Zero(t, pg.calls.Load()+pgSessions.calls.Load(), "both came from Redis")
	st = checks.CheckToken(ctx, "u1", "sess-live")
	assert.Equal(t, tempwatch.TokenStatus{ValidAfter: cutoff}, st, "the cutoff from memory, a live session Redis lacks")
	assert.EqualValues(t, 1, pgSessions.calls.Load(), "came from the next store")
	st = checks.CheckToken(ctx, "u2", "sess-live")
	assert.Equal(t, tempwatch.TokenStatus{ValidAfter: cutoff}, st, "a cutoff Redis lacks, the session from memory")
	assert.EqualValues(t, 1, pg.calls.Load())
	assert.EqualValues(t, 1, pgSessions.calls.Load())

	dead, err := redis.Open(redistest.DeadURL(t), redis.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = dead.Close() })
	deadChecks := redis.NewTokenChecks(redis.NewTokenCutoffs(dead, pg), redis.NewSessionStates(dead, pgSessions))
	st = deadChecks.CheckToken(ctx, "u1", "sess-1")
	assert.Equal(t, tempwatch.TokenStatus{ValidAfter: cutoff}, st, "Redis down: both from the next stores")
	assert.Equal(t, map[string]int64{"token.check": 1, "cutoff.fill": 1, "session.fill": 1}, dead.Degraded())
	sessionsDown.Store(true)
	st = deadChecks.CheckToken(ctx, "u2", "sess-2")
	require.Error(t, st.SessionErr, "no store answers: the caller refuses the token")
	assert.NotEqual(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(st.SessionErr))
}

// An ended session is ended at once on the instance that ended it (over its
// own copy in memory of the live state) and, from Redis, on another; the
// state is its own key, apart from a user's cutoff.
func TestSessionEndIsNotUndone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rc := redistest.MustAdapter(t)
	live := &mock.TokenCutoffs{TokensValidAfterFn: func(context.Context, string) (time.Time, error) { return time.UnixMicro(0), nil }}
	auth := redis.NewSessionStates(rc, live)
	_, err := auth.TokensValidAfter(ctx, "sess-1")
	require.NoError(t, err, "live")
	auth.PublishGone(ctx, "sess-1")
	_, err = auth.TokensValidAfter(ctx, "sess-1")
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "ended at once where it ended")

	_, err = redis.NewSessionStates(rc, live).TokensValidAfter(ctx, "sess-1")
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "from Redis")
	_, err = redis.NewTokenCutoffs(rc, live).TokensValidAfter(ctx, "sess-1")
	assert.NoError(t, err, "a user of that id is another key")
}
