package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
)

func testConfig(t *testing.T) auth.JWTConfig {
	t.Helper()
	r := config.NewReader(config.MapEnv(map[string]string{
		"JWT_KEYS":       auth.NewKey("k1") + "," + auth.NewKey("k2"),
		"JWT_ACTIVE_KID": "k2",
	}))
	cfg := auth.LoadJWTConfig(r)
	require.NoError(t, r.Err())
	return cfg
}

// sign makes a token with arbitrary header and claims, as an attacker could.
func sign(t *testing.T, method jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func TestVerifierRefusesBadTokens(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	v := auth.NewVerifier(cfg)
	now := time.Now()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{
			"iss": cfg.Issuer, "aud": cfg.Audience, "sub": "4b0c4a53-0c48-4f53-9c3e-6d8d4f6f1d11",
			"jti": auth.NewID(), "role": tempwatch.RoleViewer, "cid": "0d8b0b5e-83b0-4b8f-8a27-3d1f0e0d3b11",
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		}
	}
	with := func(k string, val any) jwt.MapClaims {
		c := good()
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	otherKey := []byte("0123456789abcdef0123456789abcdef-not-ours")

	tests := []struct {
		name  string
		token string
	}{
		{"alg none", sign(t, jwt.SigningMethodNone, "k2", jwt.UnsafeAllowNoneSignatureType, good())},
		{"wrong alg HS512 same key", sign(t, jwt.SigningMethodHS512, "k2", cfg.Keys["k2"], good())},
		{"wrong alg ES256", sign(t, jwt.SigningMethodES256, "k2", ecKey, good())},
		{"wrong key", sign(t, jwt.SigningMethodHS256, "k2", otherKey, good())},
		{"key of other kid", sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k1"], good())},
		{"unknown kid", sign(t, jwt.SigningMethodHS256, "k9", cfg.Keys["k2"], good())},
		{"no kid", sign(t, jwt.SigningMethodHS256, "", cfg.Keys["k2"], good())},
		{"expired", sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], with("exp", now.Add(-time.Minute).Unix()))},
		{"no exp", sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], with("exp", nil))},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], with("iat", now.Add(time.Hour).Unix()))},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], with("aud", "someone-else"))},
		{"no audience", sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], with("aud", nil))},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], with("iss", "evil"))},
		{"unknown role", sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], with("role", "root"))},
		{"admin with a client", sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], with("role", tempwatch.RoleAdmin))},
		{"viewer without client", sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], with("cid", nil))},
		{"no jti", sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], with("jti", nil))},
		{"no sub", sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], with("sub", nil))},
		{"tampered payload", tamper(t, sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], good()))},
		{"garbage", "not.a.jwt"},
	}
	h := guarded(v, func(w http.ResponseWriter, r *http.Request) error {
		t.Error("next handler reached with a bad token")
		return nil
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.token)
			assert.ErrorIs(t, err, auth.ErrInvalidToken, "Verify(%s)", tt.name)

			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/x", nil)
			req.Header.Set("Authorization", "Bearer "+tt.token)
			h.ServeHTTP(rec, req)
			assert.Equal(t, http.StatusUnauthorized, rec.Code)
			assert.Contains(t, rec.Header().Get("WWW-Authenticate"), "Bearer")
			assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
		})
	}

	// The same claims signed properly pass, so each refusal above is due to its one defect.
	p, err := v.Verify(sign(t, jwt.SigningMethodHS256, "k2", cfg.Keys["k2"], good()))
	require.NoError(t, err)
	assert.Equal(t, tempwatch.RoleViewer, p.Role)
	p, err = v.Verify(sign(t, jwt.SigningMethodHS256, "k1", cfg.Keys["k1"], good()))
	require.NoError(t, err, "tokens of a listed older key stay valid until they expire")
}

// guarded is route GET /x served by next for authenticated callers, behind
// the token check, as a function serves its routes.
func guarded(v *auth.Verifier, next httpapi.HandlerFunc) http.Handler {
	log := slog.New(slog.DiscardHandler)
	rt := httpapi.NewRouter(log)
	rt.Handle("GET /x", next)
	return auth.Authenticated(v, log, rt)
}

// tamper flips the role in the payload, keeping the signature.
func tamper(t *testing.T, token string) string {
	t.Helper()
	p := jwt.NewParser()
	var c jwt.MapClaims
	_, parts, err := p.ParseUnverified(token, &c)
	require.NoError(t, err)
	c["role"] = tempwatch.RoleAdmin
	delete(c, "cid")
	forged := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	payload, err := forged.SigningString()
	require.NoError(t, err)
	_, body, _ := strings.Cut(payload, ".")
	head, _, _ := strings.Cut(token, ".")
	return head + "." + body + "." + parts[2]
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	in := tempwatch.Principal{UserID: auth.NewID(), ClientID: auth.NewID(), Role: tempwatch.RoleClientAdmin}
	tok, err := auth.NewIssuer(cfg).Issue(in, "sess-1")
	require.NoError(t, err)
	out, err := auth.NewVerifier(cfg).Verify(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, in.UserID, out.UserID)
	assert.Equal(t, in.ClientID, out.ClientID)
	assert.Equal(t, in.Role, out.Role)
	assert.Equal(t, tok.ID, out.TokenID)
	assert.Equal(t, "sess-1", out.SessionID)
	assert.WithinDuration(t, time.Now().Add(cfg.AccessTTL), out.ExpiresAt, 2*time.Second)
}

func TestMiddlewareRevocation(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	rl := redis.NewRevocations(redistest.MustAdapter(t))
	v := auth.NewVerifier(cfg).WithRevocations(rl)
	h := guarded(v, func(w http.ResponseWriter, r *http.Request) error {
		p, ok := tempwatch.PrincipalFrom(r.Context())
		require.True(t, ok)
		_, _ = io.WriteString(w, p.UserID)
		return nil
	})
	call := func(token string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/x", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	is := auth.NewIssuer(cfg)
	p := tempwatch.Principal{UserID: auth.NewID(), Role: tempwatch.RoleAdmin}
	a, err := is.Issue(p, "sess-a")
	require.NoError(t, err)
	b, err := is.Issue(p, "sess-b")
	require.NoError(t, err)
	c, err := is.Issue(p, "sess-b")
	require.NoError(t, err)

	assert.Equal(t, http.StatusUnauthorized, call(""), "no token")
	assert.Equal(t, http.StatusOK, call(a.Token))
	require.NoError(t, rl.Revoke(context.Background(), a.ID, time.Minute))
	assert.Equal(t, http.StatusUnauthorized, call(a.Token), "revoked jti")
	assert.Equal(t, http.StatusOK, call(b.Token))
	require.NoError(t, rl.Revoke(context.Background(), "sess-b", time.Minute))
	assert.Equal(t, http.StatusUnauthorized, call(b.Token), "revoked session")
	assert.Equal(t, http.StatusUnauthorized, call(c.Token), "every token of a revoked session")
}

func TestLoadJWTConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"missing keys", map[string]string{}, "JWT_KEYS is required"},
		{"short key", map[string]string{"JWT_KEYS": "k1:c2hvcnQ="}, `kid "k1" is 5 bytes`},
		{"not base64", map[string]string{"JWT_KEYS": "k1:!!!"}, "not base64"},
		{"no kid", map[string]string{"JWT_KEYS": "abc"}, "not kid:base64secret"},
		{"unknown active", map[string]string{"JWT_KEYS": auth.NewKey("k1"), "JWT_ACTIVE_KID": "k2"}, "JWT_ACTIVE_KID"},
		{"bad ttl", map[string]string{"JWT_KEYS": auth.NewKey("k1"), "JWT_ACCESS_TTL": "1s"}, "JWT_ACCESS_TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := config.NewReader(config.MapEnv(tt.env))
			auth.LoadJWTConfig(r)
			require.Error(t, r.Err())
			assert.Contains(t, r.Err().Error(), tt.want)
		})
	}
}
