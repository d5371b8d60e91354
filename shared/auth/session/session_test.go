package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/auth/session"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/openapi/openapitest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
)

const password = "a long enough password"

type env struct {
	srv   *httptest.Server
	users *postgres.UserStore
	audit *postgres.AuditLog
	jwt   auth.JWTConfig
}

func newEnv(t *testing.T, limits session.Limits) *env {
	t.Helper()
	return newEnvOver(t, pgtest.MustDB(t), redistest.MustAdapter(t), limits)
}

// newEnvOver serves the /auth routes over db and rc as app.Auth wires them:
// the token check asks the users' cutoffs and the sessions' states, which
// the handler's changes write through.
func newEnvOver(t *testing.T, db *pgxpool.Pool, rc *redis.Client, limits session.Limits) *env {
	t.Helper()
	cfg := apitest.MustJWT(t)
	e := &env{users: postgres.NewUserStore(db), audit: postgres.NewAuditLog(db), jwt: cfg}
	cutoffs := redis.NewTokenCutoffs(rc, e.users)
	sessions := redis.NewSessionStates(rc, postgres.NewSessionStates(db))
	h := session.NewHandler(session.Deps{
		Users:   cutoffs.Users(e.users),
		Tokens:  sessions.RefreshTokens(postgres.NewRefreshTokenStore(db)),
		JWT:     cfg,
		Limiter: redis.NewLimiter(rc),
		Limits:  limits,
		Audit:   e.audit,
		Log:     apitest.Discard(),
	})
	v := auth.NewVerifier(cfg).WithChecker(redis.NewTokenChecks(cutoffs, sessions))
	e.srv = httptest.NewServer(openapitest.Handler(t, app.Middleware(apitest.Discard(), v, h)))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) mustUser(t *testing.T, email, role, clientID string) *tempwatch.User {
	t.Helper()
	hash, err := auth.HashPassword(password)
	require.NoError(t, err)
	u := &tempwatch.User{Email: email, Role: role, ClientID: clientID, PasswordHash: hash}
	require.NoError(t, e.users.CreateUser(context.Background(), u))
	return u
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(t *testing.T, method, path, token, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &out.body), string(b))
	}
	return out
}

func login(email, pw string) string {
	b, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	return string(b)
}

func TestLoginMeRefreshLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, session.Limits{})
	admin := e.mustUser(t, "Root@Example.com", tempwatch.RoleAdmin, "")

	res := e.do(t, "POST", "/auth/login", "", login("root@example.COM", password))
	require.Equal(t, http.StatusOK, res.status, res.raw)
	assert.Equal(t, "Bearer", res.body["token_type"])
	assert.EqualValues(t, 900, res.body["expires_in"])
	assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
	access, refresh := res.body["access_token"].(string), res.body["refresh_token"].(string)
	require.NotEmpty(t, access)
	require.NotEmpty(t, refresh)

	res = e.do(t, "GET", "/auth/me", access, "")
	require.Equal(t, http.StatusOK, res.status, res.raw)
	assert.Equal(t, admin.ID, res.body["id"])
	assert.Equal(t, "admin", res.body["role"])
	assert.NotContains(t, res.raw, "argon2", "the password hash must never be returned")
	assert.NotContains(t, res.raw, "password")

	res = e.do(t, "GET", "/auth/me", "", "")
	assert.Equal(t, http.StatusUnauthorized, res.status)
	assert.Contains(t, res.header.Get("WWW-Authenticate"), "Bearer")

	// Refresh rotates: a new pair, the old refresh token is spent.
	res = e.do(t, "POST", "/auth/refresh", "", `{"refresh_token":"`+refresh+`"}`)
	require.Equal(t, http.StatusOK, res.status, res.raw)
	access2, refresh2 := res.body["access_token"].(string), res.body["refresh_token"].(string)
	assert.NotEqual(t, refresh, refresh2)
	assert.Equal(t, http.StatusOK, e.do(t, "GET", "/auth/me", access2, "").status)

	// Logout ends the session: both access tokens of it and the refresh token.
	res = e.do(t, "POST", "/auth/logout", access2, "")
	require.Equal(t, http.StatusNoContent, res.status, res.raw)
	assert.Equal(t, http.StatusUnauthorized, e.do(t, "GET", "/auth/me", access2, "").status, "logged-out access token")
	assert.Equal(t, http.StatusUnauthorized, e.do(t, "GET", "/auth/me", access, "").status, "older access token of the session")
	assert.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/refresh", "", `{"refresh_token":"`+refresh2+`"}`).status)

	// Another session of the same user is untouched.
	res = e.do(t, "POST", "/auth/login", "", login("root@example.com", password))
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, http.StatusOK, e.do(t, "GET", "/auth/me", res.body["access_token"].(string), "").status)
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	t.Parallel()
	e := newEnv(t, session.Limits{})
	e.mustUser(t, "ada@example.com", tempwatch.RoleAdmin, "")
	res := e.do(t, "POST", "/auth/login", "", login("ada@example.com", password))
	require.Equal(t, http.StatusOK, res.status)
	r1 := res.body["refresh_token"].(string)

	res = e.do(t, "POST", "/auth/refresh", "", `{"refresh_token":"`+r1+`"}`)
	require.Equal(t, http.StatusOK, res.status)
	r2, a2 := res.body["refresh_token"].(string), res.body["access_token"].(string)
	res = e.do(t, "POST", "/auth/refresh", "", `{"refresh_token":"`+r2+`"}`)
	require.Equal(t, http.StatusOK, res.status)
	r3, a3 := res.body["refresh_token"].(string), res.body["access_token"].(string)

	// An attacker replays r1: refused, and the legitimate holder's r3 dies with it.
	res = e.do(t, "POST", "/auth/refresh", "", `{"refresh_token":"`+r1+`"}`)
	assert.Equal(t, http.StatusUnauthorized, res.status, res.raw)
	res = e.do(t, "POST", "/auth/refresh", "", `{"refresh_token":"`+r3+`"}`)
	assert.Equal(t, http.StatusUnauthorized, res.status, "the newest token of a reused family must be revoked")
	assert.Equal(t, http.StatusUnauthorized, e.do(t, "GET", "/auth/me", a3, "").status, "access tokens of the family are revoked")
	assert.Equal(t, http.StatusUnauthorized, e.do(t, "GET", "/auth/me", a2, "").status)

	for _, bad := range []string{`{"refresh_token":"made-up"}`, `{}`, `{"refresh_token":"x","extra":1}`} {
		res = e.do(t, "POST", "/auth/refresh", "", bad)
		assert.Contains(t, []int{400, 401}, res.status, bad)
	}
}

func TestLoginSameAnswerUnknownEmailAndWrongPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, session.Limits{})
	e.mustUser(t, "known@example.com", tempwatch.RoleAdmin, "")

	timed := func(body string) (response, time.Duration) {
		start := time.Now()
		res := e.do(t, "POST", "/auth/login", "", body)
		return res, time.Since(start)
	}
	// Warm the dummy hash up so its one-time creation is not timed.
	timed(login("warm@example.com", "whatever-password"))

	// Five of each, interleaved, compared by median: one sample of each
	// is at the mercy of whatever else a loaded machine runs.
	var wrong, unknown response
	var wrongTimes, unknownTimes []time.Duration
	for range 5 {
		var d time.Duration
		wrong, d = timed(login("known@example.com", "not the password!"))
		wrongTimes = append(wrongTimes, d)
		unknown, d = timed(login("nobody@example.com", "not the password!"))
		unknownTimes = append(unknownTimes, d)
	}
	dWrong, dUnknown := median(wrongTimes), median(unknownTimes)
	require.Equal(t, http.StatusUnauthorized, wrong.status)
	assert.Equal(t, wrong.status, unknown.status)
	for _, k := range []string{"request_id"} {
		delete(wrong.body, k)
		delete(unknown.body, k)
	}
	assert.Equal(t, wrong.body, unknown.body, "bodies must not tell which accounts exist")
	assert.Empty(t, wrong.header.Get("WWW-Authenticate")+unknown.header.Get("WWW-Authenticate"))
	// Both pay for one argon2id check; allow generous noise on a 2-core machine.
	ratio := float64(dUnknown) / float64(dWrong)
	assert.True(t, ratio > 0.33 && ratio < 3, "unknown email took %s, wrong password %s", dUnknown, dWrong)
}

// TestLoginNamesTheClient: an email is unique per client, so one address
// may have an account at two companies and as an admin; a login names the
// client's slug (none for an admin) and gets that account and no other.
func TestLoginNamesTheClient(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	e := newEnvOver(t, db, redistest.MustAdapter(t), session.Limits{})
	acme, polar := pgtest.MustClient(t, db, "acme", ""), pgtest.MustClient(t, db, "polar", "")
	const email = "sam@example.com"
	accounts := map[string]*tempwatch.User{
		"acme":  e.mustUser(t, email, tempwatch.RoleViewer, acme),
		"polar": e.mustUser(t, "SAM@example.com", tempwatch.RoleClientAdmin, polar),
		"":      e.mustUser(t, email, tempwatch.RoleAdmin, ""),
	}
	for client, u := range accounts {
		res := e.do(t, "POST", "/auth/login", "", fmt.Sprintf(`{"client":%q,"email":%q,"password":%q}`, client, email, password))
		require.Equal(t, http.StatusOK, res.status, "client %q: %s", client, res.raw)
		me := e.do(t, "GET", "/auth/me", res.body["access_token"].(string), "")
		assert.Equal(t, u.ID, me.body["id"], "client %q logs in to its own account", client)
	}
	for _, client := range []string{"nowhere", "acme-2"} {
		res := e.do(t, "POST", "/auth/login", "", fmt.Sprintf(`{"client":%q,"email":%q,"password":%q}`, client, email, password))
		assert.Equal(t, http.StatusUnauthorized, res.status, "an unknown client is no admin login: %s", res.raw)
	}
	res := e.do(t, "POST", "/auth/login", "", fmt.Sprintf(`{"client":"Acme Inc","email":%q,"password":%q}`, email, password))
	assert.Equal(t, http.StatusBadRequest, res.status, res.raw)
	assert.Contains(t, res.raw, "client")
	// Failures count per account: locking out acme's Sam leaves polar's alone.
	for range 6 {
		e.do(t, "POST", "/auth/login", "", fmt.Sprintf(`{"client":"acme","email":%q,"password":"not the password!"}`, email))
	}
	res = e.do(t, "POST", "/auth/login", "", fmt.Sprintf(`{"client":"polar","email":%q,"password":%q}`, email, password))
	assert.Equal(t, http.StatusOK, res.status, res.raw)
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	t.Run("per account", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, session.Limits{PerAccount: 3, PerAddress: 100, Window: time.Minute})
		e.mustUser(t, "target@example.com", tempwatch.RoleAdmin, "")
		for i := range 3 {
			res := e.do(t, "POST", "/auth/login", "", login("target@example.com", "wrong password "+strconv.Itoa(i)))
			require.Equal(t, http.StatusUnauthorized, res.status, "failure %d", i+1)
		}
		// Blocked now, even with the right password, and for any case of the email.
		res := e.do(t, "POST", "/auth/login", "", login("TARGET@example.com", password))
		assert.Equal(t, http.StatusTooManyRequests, res.status, res.raw)
		assert.Equal(t, "too_many_requests", res.body["code"])
		secs, err := strconv.Atoi(res.header.Get("Retry-After"))
		require.NoError(t, err, "Retry-After = %q", res.header.Get("Retry-After"))
		assert.True(t, secs >= 1 && secs <= 60, "Retry-After = %d", secs)
		// Other accounts from the same address are not blocked by it.
		e.mustUser(t, "other@example.com", tempwatch.RoleAdmin, "")
		assert.Equal(t, http.StatusOK, e.do(t, "POST", "/auth/login", "", login("other@example.com", password)).status)
	})
	t.Run("per address", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, session.Limits{PerAccount: 100, PerAddress: 4, Window: time.Minute})
		e.mustUser(t, "victim@example.com", tempwatch.RoleAdmin, "")
		for i := range 4 {
			res := e.do(t, "POST", "/auth/login", "", login("spray"+strconv.Itoa(i)+"@example.com", "wrong password!"))
			require.Equal(t, http.StatusUnauthorized, res.status)
		}
		res := e.do(t, "POST", "/auth/login", "", login("victim@example.com", password))
		assert.Equal(t, http.StatusTooManyRequests, res.status)
		assert.NotEmpty(t, res.header.Get("Retry-After"))
	})
	t.Run("success resets the account count", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, session.Limits{PerAccount: 2, PerAddress: 100, Window: time.Minute})
		e.mustUser(t, "typo@example.com", tempwatch.RoleAdmin, "")
		for range 3 {
			assert.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/login", "", login("typo@example.com", "wrong password!")).status)
			require.Equal(t, http.StatusOK, e.do(t, "POST", "/auth/login", "", login("typo@example.com", password)).status)
		}
	})
}

func TestLoginValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, session.Limits{})
	tests := []struct {
		name, body string
		status     int
		field      string
	}{
		{"no email", `{"password":"x"}`, 400, "email"},
		{"no password", `{"email":"a@b.c"}`, 400, "password"},
		{"unknown field", `{"email":"a@b.c","password":"x","role":"admin"}`, 400, "role"},
		{"not json", `email=a`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, "POST", "/auth/login", "", tt.body)
			assert.Equal(t, tt.status, res.status, res.raw)
			if tt.field != "" {
				assert.Contains(t, res.body["errors"], tt.field)
			}
		})
	}
}

// The key set serves the public half of every signing key: a token from a
// login verifies with the key set's x values as a verifier's JWT_PUBLIC_KEYS,
// and nothing private is in it.
func TestJWKS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, session.Limits{})
	e.mustUser(t, "jwks@example.com", tempwatch.RoleAdmin, "")

	r := e.do(t, "GET", "/.well-known/jwks.json", "", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	assert.Equal(t, "public, max-age=300", r.header.Get("Cache-Control"))
	var set auth.JWKS
	require.NoError(t, json.Unmarshal([]byte(r.raw), &set))
	require.Len(t, set.Keys, 1)
	k := set.Keys[0]
	assert.Equal(t, auth.JWK{KeyType: "OKP", Curve: "Ed25519", X: k.X, KeyID: "k1", Use: "sig", Algorithm: "EdDSA"}, k)
	assert.NotContains(t, r.raw, `"d"`, "no private key")

	tokens := e.do(t, "POST", "/auth/login", "", login("jwks@example.com", password))
	require.Equal(t, http.StatusOK, tokens.status, tokens.raw)
	rd := config.NewReader(config.MapEnv(map[string]string{"JWT_PUBLIC_KEYS": k.KeyID + ":" + k.X}))
	verifier := auth.NewVerifier(auth.LoadJWTVerifier(rd))
	require.NoError(t, rd.Err())
	_, err := verifier.Verify(tokens.body["access_token"].(string))
	assert.NoError(t, err, "a login's token verifies with the published key")
}
