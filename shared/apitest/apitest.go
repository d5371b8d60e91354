// Package apitest drives HTTP handlers in tests as each role of two tenants
// would, on a real PostgreSQL schema (Env) or over fakes of the domain's
// stores (Tenants, CheckRoles, CheckStoreFailures: the fast tier), and checks
// every response against the OpenAPI document.
package apitest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/openapi/openapitest"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
)

// Env is a fresh database with two clients, A and B, and a principal of each role.
type Env struct {
	DB      *pgxpool.Pool
	ClientA string
	ClientB string

	Admin   tempwatch.Principal // admin of everything
	AdminA  tempwatch.Principal // client_admin of A
	ViewerA tempwatch.Principal // viewer of A
	AdminB  tempwatch.Principal // client_admin of B
	ViewerB tempwatch.Principal // viewer of B
}

// MustEnv returns an Env on its own schema.
func MustEnv(tb testing.TB) *Env {
	tb.Helper()
	db := pgtest.MustDB(tb)
	e := &Env{DB: db, ClientA: pgtest.MustClient(tb, db, "client-a", "Europe/Berlin"), ClientB: pgtest.MustClient(tb, db, "client-b", "")}
	e.Admin = MustUser(tb, e, "", tempwatch.RoleAdmin)
	e.AdminA = MustUser(tb, e, e.ClientA, tempwatch.RoleClientAdmin)
	e.ViewerA = MustUser(tb, e, e.ClientA, tempwatch.RoleViewer)
	e.AdminB = MustUser(tb, e, e.ClientB, tempwatch.RoleClientAdmin)
	e.ViewerB = MustUser(tb, e, e.ClientB, tempwatch.RoleViewer)
	return e
}

// MustUser inserts a user of clientID ("" for an admin) with role, who
// cannot log in (use MustLoginUser for that), and returns it as a Principal.
func MustUser(tb testing.TB, e *Env, clientID, role string) tempwatch.Principal {
	tb.Helper()
	return mustUser(tb, e, clientID, role, "!unusable")
}

// MustLoginUser is MustUser for a user who logs in with email and password.
func MustLoginUser(tb testing.TB, e *Env, clientID, role, email, password string) tempwatch.Principal {
	tb.Helper()
	hash, err := auth.HashPassword(password)
	if err != nil {
		tb.Fatalf("apitest: hash password: %v", err)
	}
	return mustUserEmail(tb, e, clientID, role, email, hash)
}

func mustUser(tb testing.TB, e *Env, clientID, role, hash string) tempwatch.Principal {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return mustUserEmail(tb, e, clientID, role, "u-"+hex.EncodeToString(b[:])+"@example.test", hash)
}

func mustUserEmail(tb testing.TB, e *Env, clientID, role, email, hash string) tempwatch.Principal {
	tb.Helper()
	var id string
	if err := e.DB.QueryRow(context.Background(), `INSERT INTO users (client_id, email, name, role, password_hash)
		VALUES (nullif($1, '')::uuid, $2, $3, $4, $5) RETURNING id`, clientID, email, role, role, hash).Scan(&id); err != nil {
		tb.Fatalf("apitest: insert %s user: %v", role, err)
	}
	return tempwatch.Principal{UserID: id, ClientID: clientID, Role: role}
}

// Discard is a logger for handlers under test.
func Discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Response is a served response with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map (nil for an empty body).
func (r Response) JSON(tb testing.TB) map[string]any {
	tb.Helper()
	if len(r.Body) == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		tb.Fatalf("apitest: body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// Decode decodes the body into v.
func (r Response) Decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("apitest: decode body: %v: %s", err, r.Body)
	}
}

// MustJWT returns the auth function's JWT configuration as a deployment
// loads it (app.SignsTokens), with one fresh Ed25519 key and the default
// issuer, audience and lifetimes: it signs tokens and verifies them with the
// key's public half; its PublicOnly is what the other functions load.
func MustJWT(tb testing.TB) auth.JWTConfig {
	tb.Helper()
	signing, _ := auth.NewKeyPair("k1")
	r := config.NewReader(config.MapEnv(map[string]string{"JWT_SIGNING_KEYS": signing}))
	cfg := auth.LoadJWTSigner(r)
	if err := r.Err(); err != nil {
		tb.Fatalf("apitest: JWT config: %v", err)
	}
	return cfg
}

// MustToken returns an access token for p signed as cfg says, in a session
// of its own that no store holds: for handlers behind a verifier that checks
// signatures and claims only. Behind the deployed check (app.Env.HTTP),
// which refuses a session it cannot find, use MustSessionToken.
func MustToken(tb testing.TB, cfg auth.JWTConfig, p tempwatch.Principal) string {
	tb.Helper()
	return mustToken(tb, cfg, p, auth.NewID())
}

// MustSessionToken is MustToken in a live session stored in db
// (pgtest.MustSession), which the deployed token check accepts.
func MustSessionToken(tb testing.TB, db *pgxpool.Pool, cfg auth.JWTConfig, p tempwatch.Principal) string {
	tb.Helper()
	return mustToken(tb, cfg, p, pgtest.MustSession(tb, db, p.UserID))
}

func mustToken(tb testing.TB, cfg auth.JWTConfig, p tempwatch.Principal, session string) string {
	tb.Helper()
	tok, err := auth.NewIssuer(cfg).Issue(p, session)
	if err != nil {
		tb.Fatalf("apitest: issue token: %v", err)
	}
	return tok.Token
}

// Do serves method path (with a JSON body unless "") by h as p (nil: no
// principal, as an unauthenticated request past no middleware), checks the
// response against the OpenAPI document, and returns it.
func Do(tb testing.TB, h http.Handler, p *tempwatch.Principal, method, path, body string) Response {
	tb.Helper()
	req := newRequest(method, path, body)
	if p != nil {
		req = req.WithContext(tempwatch.WithPrincipal(context.Background(), *p))
	}
	return serve(tb, h, req)
}

// DoToken is Do for a handler behind app.Middleware: the request carries
// token as its bearer credential ("" for none).
func DoToken(tb testing.TB, h http.Handler, token, method, path, body string) Response {
	tb.Helper()
	req := newRequest(method, path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return serve(tb, h, req)
}

func newRequest(method, path, body string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func serve(tb testing.TB, h http.Handler, req *http.Request) Response {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	openapitest.Check(tb, req, resp)
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}
