package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/faultproxy"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

const revokePassword = "a long enough password"

// stack is the auth, users, clients and sensors functions as deployed, each
// its own instance (its own Env, so its own in-process cutoffs), over one
// PostgreSQL schema and one Redis prefix.
type stack struct {
	db                            *pgxpool.Pool
	auth, users, clients, sensors http.Handler
	admin                         string // an admin's access token
}

func newStack(t *testing.T, db *pgxpool.Pool, rc *redis.Client) *stack {
	t.Helper()
	jwt := apitest.MustJWT(t)
	env := func() *app.Env { return &app.Env{Log: apitest.Discard(), DB: db, Redis: rc, JWT: jwt} }
	s := &stack{db: db, auth: app.Auth(env()), users: app.Users(env()), clients: app.Clients(env()), sensors: app.Sensors(env())}
	s.mustUser(t, "root@example.com", tempwatch.RoleAdmin, "")
	s.admin, _ = s.login(t, "", "root@example.com", revokePassword)
	return s
}

func (s *stack) mustUser(t *testing.T, email, role, clientID string) string {
	t.Helper()
	hash, err := auth.HashPassword(revokePassword)
	require.NoError(t, err)
	u := &tempwatch.User{Email: email, Role: role, ClientID: clientID, PasswordHash: hash}
	require.NoError(t, postgres.NewUserStore(s.db).CreateUser(context.Background(), u))
	return u.ID
}

// login returns the access and refresh tokens of a new session.
// login logs in to the account with email of the client with slug client
// ("" for an admin).
func (s *stack) login(t *testing.T, client, email, password string) (access, refresh string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"client": client, "email": email, "password": password})
	res := apitest.DoToken(t, s.auth, "", "POST", "/auth/login", string(b))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	body := res.JSON(t)
	return body["access_token"].(string), body["refresh_token"].(string)
}

func (s *stack) refresh(t *testing.T, refresh string) int {
	t.Helper()
	return apitest.DoToken(t, s.auth, "", "POST", "/auth/refresh", `{"refresh_token":"`+refresh+`"}`).Status
}

func do(t *testing.T, h http.Handler, token, method, path, body string) int {
	t.Helper()
	return apitest.DoToken(t, h, token, method, path, body).Status
}

// refusedWithin asserts that token is refused (want) on h within the bound
// the design promises another function instance: its in-process copy of the
// cutoff lives CutoffLocalTTL. It returns how long that took.
func refusedWithin(t *testing.T, h http.Handler, token, method, path, body string, want int) time.Duration {
	t.Helper()
	start := time.Now()
	bound := redis.CutoffLocalTTL + 500*time.Millisecond
	assert.Eventually(t, func() bool { return do(t, h, token, method, path, body) == want },
		bound, 20*time.Millisecond, "%s %s with the old token: want %d within %v", method, path, want, bound)
	took := time.Since(start)
	t.Logf("%s %s refused (%d) %v after the change", method, path, want, took.Round(time.Millisecond))
	return took
}

func sensorBody(clientID, device string) string {
	return `{"client_id":"` + clientID + `","name":"Cold room","device_id":"` + device + `"}`
}

// The attacks of issue 11, replayed against the functions as deployed: each
// change ends the user's live access tokens on the function that made it at
// once, on every other function within CutoffLocalTTL, and their refresh
// tokens at once.
func TestAccessEndsWhenTakenAway(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	s := newStack(t, db, redistest.MustAdapter(t))
	clientA := pgtest.MustClient(t, db, "acme", "")

	t.Run("deleted client admin creates a user", func(t *testing.T) {
		id := s.mustUser(t, "gone@acme.example", tempwatch.RoleClientAdmin, clientA)
		token, refresh := s.login(t, "acme", "gone@acme.example", revokePassword)
		require.Equal(t, http.StatusOK, do(t, s.sensors, token, "GET", "/sensors", ""), "the token works before")
		require.Equal(t, http.StatusNoContent, do(t, s.users, s.admin, "DELETE", "/users/"+id, ""))

		newUser := `{"email":"backdoor@acme.example","role":"client_admin","password":"another long password"}`
		assert.Equal(t, http.StatusUnauthorized, do(t, s.users, token, "POST", "/users", newUser), "on the function that deleted the user: at once")
		refusedWithin(t, s.sensors, token, "GET", "/sensors", "", http.StatusUnauthorized)
		assert.Equal(t, http.StatusUnauthorized, s.refresh(t, refresh))
		_, err := postgres.NewUserStore(db).FindUserByLogin(context.Background(), "acme", "backdoor@acme.example")
		assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "no account was created")
	})

	t.Run("demoted viewer creates a sensor", func(t *testing.T) {
		id := s.mustUser(t, "demoted@acme.example", tempwatch.RoleClientAdmin, clientA)
		token, refresh := s.login(t, "acme", "demoted@acme.example", revokePassword)
		require.Equal(t, http.StatusCreated, do(t, s.sensors, token, "POST", "/sensors", sensorBody(clientA, "before")), "the token works before")
		require.Equal(t, http.StatusOK, do(t, s.users, s.admin, "PATCH", "/users/"+id, `{"role":"viewer"}`))

		refusedWithin(t, s.sensors, token, "POST", "/sensors", sensorBody(clientA, "after"), http.StatusUnauthorized)
		assert.Equal(t, http.StatusUnauthorized, s.refresh(t, refresh), "the session ended")
		viewer, _ := s.login(t, "acme", "demoted@acme.example", revokePassword)
		assert.Equal(t, http.StatusForbidden, do(t, s.sensors, viewer, "POST", "/sensors", sensorBody(clientA, "again")), "a new login has the new role")
	})

	t.Run("admin reset ends the other sessions", func(t *testing.T) {
		id := s.mustUser(t, "reset@acme.example", tempwatch.RoleViewer, clientA)
		phone, phoneRefresh := s.login(t, "acme", "reset@acme.example", revokePassword)
		laptop, laptopRefresh := s.login(t, "acme", "reset@acme.example", revokePassword)
		require.Equal(t, http.StatusOK, do(t, s.sensors, laptop, "GET", "/sensors", ""))
		require.Equal(t, http.StatusOK, do(t, s.users, s.admin, "PATCH", "/users/"+id, `{"password":"the admin's new password"}`))

		assert.Equal(t, http.StatusUnauthorized, do(t, s.users, phone, "GET", "/users/"+id, ""))
		refusedWithin(t, s.sensors, laptop, "GET", "/sensors", "", http.StatusUnauthorized)
		refusedWithin(t, s.auth, phone, "GET", "/auth/me", "", http.StatusUnauthorized)
		assert.Equal(t, http.StatusUnauthorized, s.refresh(t, phoneRefresh))
		assert.Equal(t, http.StatusUnauthorized, s.refresh(t, laptopRefresh))
		fresh, _ := s.login(t, "acme", "reset@acme.example", "the admin's new password")
		assert.Equal(t, http.StatusOK, do(t, s.sensors, fresh, "GET", "/sensors", ""), "the new password's session works")
	})

	t.Run("own password change ends the other sessions", func(t *testing.T) {
		s.mustUser(t, "self@acme.example", tempwatch.RoleViewer, clientA)
		this, _ := s.login(t, "acme", "self@acme.example", revokePassword)
		other, otherRefresh := s.login(t, "acme", "self@acme.example", revokePassword)
		require.Equal(t, http.StatusOK, do(t, s.sensors, other, "GET", "/sensors", ""))
		res := apitest.DoToken(t, s.auth, this, "POST", "/auth/password",
			`{"current_password":"`+revokePassword+`","new_password":"my own new password"}`)
		require.Equal(t, http.StatusOK, res.Status, string(res.Body))
		issued := res.JSON(t)["access_token"].(string)

		assert.Equal(t, http.StatusUnauthorized, do(t, s.auth, this, "GET", "/auth/me", ""))
		refusedWithin(t, s.sensors, other, "GET", "/sensors", "", http.StatusUnauthorized)
		assert.Equal(t, http.StatusUnauthorized, s.refresh(t, otherRefresh))
		// Issued in the same second as the change, under the new cutoff.
		assert.Equal(t, http.StatusOK, do(t, s.sensors, issued, "GET", "/sensors", ""), "the new session's token works")
	})

	t.Run("client deletion ends its users' tokens", func(t *testing.T) {
		clientB := pgtest.MustClient(t, db, "bolt", "")
		s.mustUser(t, "ca@bolt.example", tempwatch.RoleClientAdmin, clientB)
		s.mustUser(t, "v@bolt.example", tempwatch.RoleViewer, clientB)
		ca, caRefresh := s.login(t, "bolt", "ca@bolt.example", revokePassword)
		viewer, _ := s.login(t, "bolt", "v@bolt.example", revokePassword)
		for _, tok := range []string{ca, viewer} {
			require.Equal(t, http.StatusOK, do(t, s.users, tok, "GET", "/users", ""))
			require.Equal(t, http.StatusOK, do(t, s.sensors, tok, "GET", "/sensors", ""))
		}
		require.Equal(t, http.StatusNoContent, do(t, s.clients, s.admin, "DELETE", "/clients/"+clientB, ""))

		for _, tok := range []string{ca, viewer} {
			refusedWithin(t, s.users, tok, "GET", "/users", "", http.StatusUnauthorized)
			refusedWithin(t, s.sensors, tok, "GET", "/sensors", "", http.StatusUnauthorized)
		}
		assert.Equal(t, http.StatusUnauthorized, s.refresh(t, caRefresh))
		assert.Equal(t, http.StatusOK, do(t, s.users, s.admin, "GET", "/users", ""), "the admin's token is untouched")
	})
}

// With Redis down the cutoffs are read from PostgreSQL: a demotion still ends
// the old token, never "accepted because the cache is away"; with
// PostgreSQL down too the token is refused with 503, and works again when
// PostgreSQL is back.
func TestAccessEndsWithRedisDown(t *testing.T) {
	t.Parallel()
	direct := pgtest.MustDB(t)
	db, proxy := pgtest.MustProxiedDB(t, direct)
	rc, err := redis.Open(redistest.DeadURL(t), redis.Options{Prefix: "dead:"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })

	s := newStack(t, db, rc)
	clientA := pgtest.MustClient(t, direct, "acme", "")
	id := s.mustUser(t, "ca@acme.example", tempwatch.RoleClientAdmin, clientA)
	token, _ := s.login(t, "acme", "ca@acme.example", revokePassword)
	require.Equal(t, http.StatusCreated, do(t, s.sensors, token, "POST", "/sensors", sensorBody(clientA, "before")))
	require.Equal(t, http.StatusOK, do(t, s.users, s.admin, "PATCH", "/users/"+id, `{"role":"viewer"}`))
	refusedWithin(t, s.sensors, token, "POST", "/sensors", sensorBody(clientA, "after"), http.StatusUnauthorized)
	assert.Positive(t, rc.Degraded()["token.check"], "the cutoffs were read without Redis")

	viewer, _ := s.login(t, "acme", "ca@acme.example", revokePassword)
	require.Equal(t, http.StatusOK, do(t, s.sensors, viewer, "GET", "/sensors", ""))
	unavailableUntilRestored(t, proxy, s.users, viewer, "/users/"+id)
}

// unavailableUntilRestored cuts PostgreSQL (Redis being down) and asserts
// that token is refused with 503 on GET path of h, never accepted, and
// works again once PostgreSQL is back.
func unavailableUntilRestored(t *testing.T, proxy *faultproxy.Proxy, h http.Handler, token, path string) {
	t.Helper()
	proxy.Cut()
	res := apitest.DoToken(t, h, token, "GET", path, "")
	assert.Eventually(t, func() bool {
		res = apitest.DoToken(t, h, token, "GET", path, "")
		return res.Status == http.StatusServiceUnavailable
	}, redis.CutoffLocalTTL+5*time.Second, 20*time.Millisecond, "PostgreSQL and Redis down: 503, never accepted")
	assert.Equal(t, tempwatch.EUNAVAILABLE, res.JSON(t)["code"], string(res.Body))
	proxy.Restore()
	assert.Eventually(t, func() bool { return do(t, h, token, "GET", path, "") == http.StatusOK },
		5*time.Second, 20*time.Millisecond, "PostgreSQL back: the token works again")
}

// sessionOf is the session id (sid) an access token names.
func sessionOf(t *testing.T, token string) string {
	t.Helper()
	var c struct {
		jwt.RegisteredClaims
		SessionID string `json:"sid"`
	}
	_, _, err := jwt.NewParser().ParseUnverified(token, &c)
	require.NoError(t, err)
	require.NotEmpty(t, c.SessionID)
	return c.SessionID
}

// newPrivateRedisStack is newStack over db (direct: the same database,
// unproxied) and a private redis-server, with a viewer logged in twice: out
// (to log out) and live, each used once on the sensors function, so both
// are held in Redis and in its memory.
func newPrivateRedisStack(t *testing.T, db, direct *pgxpool.Pool) (s *stack, srv *redistest.Server, rc *redis.Client, out, live string) {
	t.Helper()
	srv = redistest.MustServer(t)
	rc, err := redis.Open(srv.URL(), redis.Options{Log: apitest.Discard()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	s = newStack(t, db, rc)
	s.mustUser(t, "v@acme.example", tempwatch.RoleViewer, pgtest.MustClient(t, direct, "acme", ""))
	out, _ = s.login(t, "acme", "v@acme.example", revokePassword)
	live, _ = s.login(t, "acme", "v@acme.example", revokePassword)
	for _, tok := range []string{out, live} {
		require.Equal(t, http.StatusOK, do(t, s.sensors, tok, "GET", "/sensors", ""), "live")
	}
	return s, srv, rc, out, live
}

// With a private Redis killed, a logout still ends the session's access
// tokens on every function: PostgreSQL answers, within CutoffLocalTTL (the
// other functions' copies in memory), never "accepted because Redis is
// away"; a live session's token keeps working; with PostgreSQL unreachable
// too it is refused with 503.
func TestLogoutEndsTheSessionWithRedisKilled(t *testing.T) {
	t.Parallel()
	direct := pgtest.MustDB(t)
	db, proxy := pgtest.MustProxiedDB(t, direct)
	s, srv, rc, out, live := newPrivateRedisStack(t, db, direct)

	srv.Kill()
	require.Equal(t, http.StatusNoContent, do(t, s.auth, out, "POST", "/auth/logout", ""))
	assert.Equal(t, http.StatusUnauthorized, do(t, s.auth, out, "GET", "/auth/me", ""), "where it logged out: at once")
	refusedWithin(t, s.sensors, out, "GET", "/sensors", "", http.StatusUnauthorized)
	assert.Equal(t, http.StatusOK, do(t, s.sensors, live, "GET", "/sensors", ""), "the other session lives on")
	assert.Positive(t, rc.Degraded()["token.check"], "checked without Redis")
	assert.Positive(t, rc.Degraded()["session.set"], "the write-through was tried")

	unavailableUntilRestored(t, proxy, s.sensors, live, "/sensors")
	assert.Equal(t, http.StatusUnauthorized, do(t, s.sensors, out, "GET", "/sensors", ""))
}

// A logout whose write-through Redis did not take stays a logout once Redis
// is back: a restarted Redis holds nothing, so PostgreSQL answers; and a
// Redis that kept the session's old "live" state (the write lost, the entry
// not) is right again within CutoffTTL, its lifetime.
func TestLogoutWithRedisDownStaysALogout(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	s, srv, rc, out, live := newPrivateRedisStack(t, db, db)

	srv.Kill()
	require.Equal(t, http.StatusNoContent, do(t, s.auth, out, "POST", "/auth/logout", ""))
	srv.Restart()
	require.Eventually(t, func() bool { return rc.Ping(context.Background()) == nil }, 10*time.Second, 20*time.Millisecond)
	refusedWithin(t, s.sensors, out, "GET", "/sensors", "", http.StatusUnauthorized)
	assert.Equal(t, http.StatusOK, do(t, s.sensors, live, "GET", "/sensors", ""))

	// The worst a lost write leaves: Redis still says "live" ("0", as a fill
	// that read PostgreSQL before the logout writes it).
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	require.NoError(t, rdb.Set(context.Background(), redis.DefaultPrefix+"session:"+sessionOf(t, out)+":state", "0", redis.CutoffTTL).Err())
	start := time.Now()
	bound := redis.CutoffTTL + redis.CutoffLocalTTL + 2*time.Second
	assert.Eventually(t, func() bool {
		return do(t, s.sensors, out, "GET", "/sensors", "") == http.StatusUnauthorized &&
			do(t, s.users, out, "GET", "/users", "") == http.StatusUnauthorized
	}, bound, 50*time.Millisecond, "refused within the Redis entry's lifetime")
	t.Logf("refused %v after the stale entry was written (bound %v)", time.Since(start).Round(time.Millisecond), bound)
	assert.Equal(t, http.StatusOK, do(t, s.sensors, live, "GET", "/sensors", ""))
}
