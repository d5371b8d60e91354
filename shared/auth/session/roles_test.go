package session_test

// Fast tier: the /auth routes over fake user, token and limiter
// stores, no server.

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/auth/session"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// passwordHash is the argon2id hash of password, made once: every fake user has it.
var passwordHash = sync.OnceValue(func() string {
	h, err := auth.HashPassword(password)
	if err != nil {
		panic(err)
	}
	return h
})

// sessionWorld is the fakes behind one /auth handler: the users (each
// caller of tn, and loginEmail, a viewer of A), a refresh token of family
// "fam-1" of that viewer, and what the limiter was asked.
type sessionWorld struct {
	users   *mock.UserStore
	tokens  *mock.RefreshTokenStore
	limiter *mock.Limiter

	mu     sync.Mutex
	hits   []string // limiter keys counted
	resets []string // limiter keys reset
}

const loginEmail = "viewer@a.test"

func newSessionWorld(tn apitest.Tenants, w *apitest.Writes) *sessionWorld {
	now := time.Now().UTC().Truncate(time.Second)
	viewer := &tempwatch.User{ID: auth.NewID(), ClientID: tn.ClientA, Email: loginEmail, Role: tempwatch.RoleViewer,
		PasswordHash: passwordHash(), CreatedAt: now, UpdatedAt: now}
	byID := map[string]*tempwatch.User{viewer.ID: viewer}
	for _, p := range []tempwatch.Principal{tn.Admin, tn.AdminA, tn.ViewerA, tn.AdminB} {
		byID[p.UserID] = &tempwatch.User{ID: p.UserID, ClientID: p.ClientID, Email: p.UserID + "@example.test", Role: p.Role,
			PasswordHash: passwordHash(), CreatedAt: now, UpdatedAt: now}
	}
	sw := &sessionWorld{}
	sw.users = &mock.UserStore{
		FindUserByIDFn: func(_ context.Context, id string) (*tempwatch.User, error) {
			if u, ok := byID[id]; ok {
				return u, nil
			}
			return nil, tempwatch.NotFound("User")
		},
		FindUserByLoginFn: func(_ context.Context, client, email string) (*tempwatch.User, error) {
			if client == "" && email == loginEmail {
				return viewer, nil
			}
			return nil, tempwatch.NotFound("User")
		},
		ChangePasswordFn: func(context.Context, string, string, string) (time.Time, error) {
			w.Add("ChangePassword")
			return time.Now(), nil
		},
	}
	sw.tokens = &mock.RefreshTokenStore{
		CreateRefreshTokenFn: func(context.Context, tempwatch.RefreshToken) error {
			w.Add("CreateRefreshToken")
			return nil
		},
		RotateRefreshTokenFn: func(context.Context, []byte, *tempwatch.RefreshToken) (tempwatch.RefreshToken, error) {
			w.Add("RotateRefreshToken")
			return tempwatch.RefreshToken{FamilyID: "fam-1", UserID: viewer.ID}, nil
		},
		RevokeRefreshFamilyFn: func(context.Context, string, string) error {
			w.Add("RevokeRefreshFamily")
			return nil
		},
	}
	sw.limiter = &mock.Limiter{
		BlockedFn: func(context.Context, string, int) time.Duration { return 0 },
		HitFn: func(_ context.Context, key string, _ time.Duration) {
			sw.mu.Lock()
			defer sw.mu.Unlock()
			sw.hits = append(sw.hits, key)
		},
		ResetFn: func(_ context.Context, key string) {
			sw.mu.Lock()
			defer sw.mu.Unlock()
			sw.resets = append(sw.resets, key)
		},
	}
	return sw
}

// acceptAudit takes every audit event: what /auth records is checked
// against PostgreSQL (audit_test.go).
var acceptAudit = &mock.AuditLog{RecordAuditFn: func(context.Context, *tempwatch.AuditEvent) error { return nil }}

func (sw *sessionWorld) handler(jwt auth.JWTConfig, log *slog.Logger) http.Handler {
	return session.NewHandler(session.Deps{Users: sw.users, Tokens: sw.tokens, JWT: jwt,
		Limiter: sw.limiter, Audit: acceptAudit, Log: log})
}

// handlerOver is handler with another limiter.
func (sw *sessionWorld) handlerOver(l tempwatch.Limiter, jwt auth.JWTConfig, log *slog.Logger) http.Handler {
	return session.NewHandler(session.Deps{Users: sw.users, Tokens: sw.tokens, JWT: jwt,
		Limiter: l, Audit: acceptAudit, Log: log})
}

func TestSessionRolesFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	jwt := apitest.MustJWT(t)
	apitest.CheckRoles(t, "AuthFunction", tn, func(log *slog.Logger, w *apitest.Writes) http.Handler {
		return newSessionWorld(tn, w).handler(jwt, log)
	}, []apitest.RoleCase{
		{Route: "POST /auth/login", Body: login(loginEmail, password), Want: [5]int{200, 200, 200, 200, 200}},
		{Route: "POST /auth/login", Name: "POST /auth/login with a wrong password", Body: login(loginEmail, "not the password"),
			Want: [5]int{401, 401, 401, 401, 401}},
		{Route: "POST /auth/refresh", Body: `{"refresh_token":"any"}`, Want: [5]int{200, 200, 200, 200, 200}},
		{Route: "POST /auth/logout", Want: [5]int{204, 204, 204, 204, 401}},
		{Route: "GET /auth/me", Want: [5]int{200, 200, 200, 200, 401}},
		{Route: "POST /auth/password", Body: `{"current_password":"` + password + `","new_password":"another long enough password"}`,
			Want: [5]int{200, 200, 200, 200, 401}},
		{Route: "GET /.well-known/jwks.json", Want: [5]int{200, 200, 200, 200, 200}},
	})
}

// TestLoginLimitsFast: a blocked account is answered 429 before any
// password is checked; a wrong password counts against the account and the
// address; a right one forgets the account's failures.
func TestLoginLimitsFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	jwt := apitest.MustJWT(t)

	t.Run("blocked", func(t *testing.T) {
		sw := newSessionWorld(tn, &apitest.Writes{})
		sw.limiter.BlockedFn = func(context.Context, string, int) time.Duration { return 90 * time.Second }
		resp := apitest.Do(t, sw.handler(jwt, apitest.Logger(t)), nil, "POST", "/auth/login", login(loginEmail, password))
		assert.Equal(t, http.StatusTooManyRequests, resp.Status, "even the right password: %s", resp.Body)
		assert.Equal(t, "90", resp.Header.Get("Retry-After"))
		assert.Empty(t, sw.hits)
		assert.Empty(t, sw.resets, "a blocked login is no success")
	})
	t.Run("wrong password", func(t *testing.T) {
		sw := newSessionWorld(tn, &apitest.Writes{})
		resp := apitest.Do(t, sw.handler(jwt, apitest.Logger(t)), nil, "POST", "/auth/login", login(loginEmail, "not the password"))
		assert.Equal(t, http.StatusUnauthorized, resp.Status, string(resp.Body))
		require.Len(t, sw.hits, 2, "the account and the address are counted")
		assert.Regexp(t, `^login:acct:[0-9a-f]{32}$`, sw.hits[0], "accounts are counted by a hash")
		assert.NotContains(t, sw.hits[0], loginEmail)
		assert.Regexp(t, `^login:addr:`, sw.hits[1])
		assert.Empty(t, sw.resets)
	})
	t.Run("unknown email answers as a wrong password", func(t *testing.T) {
		sw := newSessionWorld(tn, &apitest.Writes{})
		h := sw.handler(jwt, apitest.Logger(t))
		unknown := apitest.Do(t, h, nil, "POST", "/auth/login", login("nobody@a.test", password))
		wrong := apitest.Do(t, h, nil, "POST", "/auth/login", login(loginEmail, "not the password"))
		assert.Equal(t, http.StatusUnauthorized, unknown.Status)
		assert.Equal(t, wrong.JSON(t)["detail"], unknown.JSON(t)["detail"])
	})
	t.Run("right password", func(t *testing.T) {
		sw := newSessionWorld(tn, &apitest.Writes{})
		resp := apitest.Do(t, sw.handler(jwt, apitest.Logger(t)), nil, "POST", "/auth/login", login(loginEmail, password))
		require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
		assert.Empty(t, sw.hits)
		require.Len(t, sw.resets, 1)
		assert.Regexp(t, `^login:acct:`, sw.resets[0])
	})
}

// TestLimiterDownDegradesOpenFast: when the limiter's counters are out of
// reach (the Redis limiter with no Redis), logins still work (argon2id keeps
// guesses expensive), and the outage is logged, by the adapter.
func TestLimiterDownDegradesOpenFast(t *testing.T) {
	t.Parallel()
	sw := newSessionWorld(apitest.NewTenants(), &apitest.Writes{})
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	h := sw.handlerOver(redis.NewLimiter(redis.New(nil, redis.Options{Log: log})), apitest.MustJWT(t), log)

	resp := apitest.Do(t, h, nil, "POST", "/auth/login", login(loginEmail, password))
	assert.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	resp = apitest.Do(t, h, nil, "POST", "/auth/login", login(loginEmail, "not the password"))
	assert.Equal(t, http.StatusUnauthorized, resp.Status, string(resp.Body))
	assert.Contains(t, logs.String(), "redis unavailable")
	assert.Contains(t, logs.String(), "op=limit.check")
}

// TestLogoutEndsTheSessionFast: logout revokes the session's refresh tokens,
// which ends its access tokens too (the store writes that through: redis.TokenCutoffs.RefreshTokens).
func TestLogoutEndsTheSessionFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	sw := newSessionWorld(tn, &apitest.Writes{})
	var families []string
	sw.tokens.RevokeRefreshFamilyFn = func(_ context.Context, userID, familyID string) error {
		families = append(families, userID+"/"+familyID)
		return nil
	}
	jwt := apitest.MustJWT(t)
	tok, err := auth.NewIssuer(jwt).Issue(tn.ViewerA, "fam-7")
	require.NoError(t, err)
	h := app.Middleware(apitest.Logger(t), auth.NewVerifier(jwt), sw.handler(jwt, apitest.Logger(t)))
	resp := apitest.DoToken(t, h, tok.Token, "POST", "/auth/logout", "")
	require.Equal(t, http.StatusNoContent, resp.Status, string(resp.Body))
	assert.Equal(t, []string{tn.ViewerA.UserID + "/fam-7"}, families)
}
