package session_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/auth/session"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
)

// With Redis down, login (with or without a device token), me, refresh and
// password change keep working (the rate limiter degrades open, logged; the
// token cutoffs and session states are read from PostgreSQL), and logout and
// password change still end the sessions, which live in PostgreSQL: the
// logged-out access token is refused.
func TestRedisDownDegradesOpen(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	rc, err := redis.Open(redistest.DeadURL(t), redis.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	e := newEnvOver(t, db, rc, session.Limits{})
	e.mustUser(t, "ops@example.com", tempwatch.RoleAdmin, "")

	assert.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/login", "", login("ops@example.com", "wrong password!")).status)
	res := e.do(t, "POST", "/auth/login", "", login("ops@example.com", password))
	require.Equal(t, http.StatusOK, res.status, res.raw)
	access, refresh := res.body["access_token"].(string), res.body["refresh_token"].(string)
	// Device tokens need no Redis: issued, and honoured.
	device, _ := res.body["device_token"].(string)
	require.NotEmpty(t, device)
	assert.Equal(t, http.StatusOK, e.do(t, "POST", "/auth/login", "", loginWithDevice("ops@example.com", password, device)).status)
	assert.Equal(t, http.StatusOK, e.do(t, "GET", "/auth/me", access, "").status)
	assert.Equal(t, http.StatusNoContent, e.do(t, "POST", "/auth/logout", access, "").status)
	assert.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/refresh", "", `{"refresh_token":"`+refresh+`"}`).status,
		"refresh tokens are revoked in PostgreSQL even without Redis")
	assert.Equal(t, http.StatusUnauthorized, e.do(t, "GET", "/auth/me", access, "").status,
		"the logged-out access token is refused without Redis")

	// A password change goes through too, and ends the refresh tokens.
	access, refresh = e.tokens(t, "ops@example.com", password)
	res = e.do(t, "POST", "/auth/password", access, changePassword(password, newPassword))
	require.Equal(t, http.StatusOK, res.status, res.raw)
	assert.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/refresh", "", refreshBody(refresh)).status)
	assert.Equal(t, http.StatusOK, e.do(t, "GET", "/auth/me", res.body["access_token"].(string), "").status)
	// Each way auth uses Redis was tried and counted as degraded.
	for _, op := range []string{"limit.check", "limit.hit", "limit.reset", "token.check", "session.set", "cutoff.set"} {
		assert.Positive(t, rc.Degraded()[op], op)
	}
}

// Two refreshes racing with one token: exactly one wins; the loser is
// treated as reuse, which ends the session (the strict reading of RFC 9700).
func TestConcurrentRotationOneWinner(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	store := postgres.NewRefreshTokenStore(db)
	e := &env{users: postgres.NewUserStore(db)}
	u := e.mustUser(t, "race@example.com", tempwatch.RoleAdmin, "")
	ctx := context.Background()
	secret, h := tempwatch.NewRefreshSecret()
	require.NoError(t, store.CreateRefreshToken(ctx, tempwatch.RefreshToken{FamilyID: auth.NewID(), UserID: u.ID, Hash: h, ExpiresAt: time.Now().Add(time.Hour), ValidAfter: u.TokensValidAfter}))

	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	nexts := make([]*tempwatch.RefreshToken, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, nh := tempwatch.NewRefreshSecret()
			nexts[i] = &tempwatch.RefreshToken{Hash: nh, ExpiresAt: time.Now().Add(time.Hour)}
			_, errs[i] = store.RotateRefreshToken(ctx, tempwatch.HashRefreshSecret(secret), nexts[i])
		}()
	}
	wg.Wait()
	wins := 0
	var winner *tempwatch.RefreshToken
	for i, err := range errs {
		if err == nil {
			wins++
			winner = nexts[i]
		} else {
			assert.ErrorIs(t, err, tempwatch.ErrRefreshReused)
		}
	}
	require.Equal(t, 1, wins, "exactly one rotation may succeed: %v", errs)
	_, err := store.RotateRefreshToken(ctx, winner.Hash, &tempwatch.RefreshToken{Hash: make([]byte, 32), ExpiresAt: time.Now().Add(time.Hour)})
	assert.ErrorIs(t, err, tempwatch.ErrRefreshInvalid, "the reuse revoked the winner's new token too")
}
