package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
)

// testConfig is the auth function's configuration with keys k1 and k2, k2
// signing.
func testConfig(t *testing.T) auth.JWTConfig {
	t.Helper()
	k1, _ := auth.NewKeyPair("k1")
	k2, _ := auth.NewKeyPair("k2")
	return mustSigner(t, map[string]string{"JWT_SIGNING_KEYS": k1 + "," + k2, "JWT_ACTIVE_KID": "k2"})
}

func mustSigner(t *testing.T, env map[string]string) auth.JWTConfig {
	t.Helper()
	return mustLoad(t, auth.LoadJWTSigner, env)
}

func mustVerifier(t *testing.T, env map[string]string) auth.JWTConfig {
	t.Helper()
	return mustLoad(t, auth.LoadJWTVerifier, env)
}

func mustLoad(t *testing.T, load func(*config.Reader) auth.JWTConfig, env map[string]string) auth.JWTConfig {
	t.Helper()
	r := config.NewReader(config.MapEnv(env))
	cfg := load(r)
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
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	k1, k2 := cfg.SigningKeys["k1"], cfg.SigningKeys["k2"]
	ed := jwt.SigningMethodEdDSA
	forgedAdmin := with("role", tempwatch.RoleAdmin)
	delete(forgedAdmin, "cid")

	tests := []struct {
		name  string
		token string
	}{
		{"alg none", sign(t, jwt.SigningMethodNone, "k2", jwt.UnsafeAllowNoneSignatureType, good())},
		// The old algorithm, keyed with the public key's bytes (what an
		// attacker can read from the JWKS) or with the private seed.
		{"HS256 keyed with the public key", sign(t, jwt.SigningMethodHS256, "k2", []byte(cfg.PublicKeys["k2"]), good())},
		{"HS256 keyed with the seed", sign(t, jwt.SigningMethodHS256, "k2", k2.Seed(), good())},
		// The issue's attack: an admin token forged with the HMAC secret the
		// compose file and the LocalStack script used to fall back to.
		{"HS256 admin with the old published secret", sign(t, jwt.SigningMethodHS256, "local", []byte("local-dev-only-jwt-secret-never-use-it-elsewhere"),
			forgedAdmin)},
		{"wrong alg ES256", sign(t, jwt.SigningMethodES256, "k2", ecKey, good())},
		{"wrong key", sign(t, ed, "k2", otherKey, good())},
		{"key of other kid", sign(t, ed, "k2", k1, good())},
		{"unknown kid", sign(t, ed, "k9", k2, good())},
		{"no kid", sign(t, ed, "", k2, good())},
		{"expired", sign(t, ed, "k2", k2, with("exp", now.Add(-time.Minute).Unix()))},
		{"no exp", sign(t, ed, "k2", k2, with("exp", nil))},
		{"issued in the future", sign(t, ed, "k2", k2, with("iat", now.Add(time.Hour).Unix()))},
		{"wrong audience", sign(t, ed, "k2", k2, with("aud", "someone-else"))},
		{"no audience", sign(t, ed, "k2", k2, with("aud", nil))},
		{"wrong issuer", sign(t, ed, "k2", k2, with("iss", "evil"))},
		{"unknown role", sign(t, ed, "k2", k2, with("role", "root"))},
		{"admin with a client", sign(t, ed, "k2", k2, with("role", tempwatch.RoleAdmin))},
		{"viewer without client", sign(t, ed, "k2", k2, with("cid", nil))},
		{"no jti", sign(t, ed, "k2", k2, with("jti", nil))},
		{"no sub", sign(t, ed, "k2", k2, with("sub", nil))},
		{"tampered payload", tamper(t, sign(t, ed, "k2", k2, good()))},
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
	p, err := v.Verify(sign(t, ed, "k2", k2, good()))
	require.NoError(t, err)
	assert.Equal(t, tempwatch.RoleViewer, p.Role)
	_, err = v.Verify(sign(t, ed, "k2", k2, forgedAdmin))
	require.NoError(t, err, "the forged admin's claims are refused for their signature alone")
	p, err = v.Verify(sign(t, ed, "k1", k1, good()))
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
	forged := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
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

// With a checker, a token of an ended session is refused (401), one whose
// session cannot be read too (503), and so is a token naming no session.
func TestMiddlewareSession(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	states := map[string]error{"sess-live": nil, "sess-unreadable": errors.New("postgres down")}
	v := auth.NewVerifier(cfg).WithChecker(&mock.TokenChecker{CheckTokenFn: func(_ context.Context, _, sessionID string) tempwatch.TokenStatus {
		err, ok := states[sessionID]
		if !ok {
			err = tempwatch.NotFound("Session")
		}
		return tempwatch.TokenStatus{SessionErr: err}
	}})
	h := guarded(v, func(w http.ResponseWriter, r *http.Request) error {
		p, ok := tempwatch.PrincipalFrom(r.Context())
		require.True(t, ok)
		_, _ = io.WriteString(w, p.UserID)
		return nil
	})
	is := auth.NewIssuer(cfg)
	p := tempwatch.Principal{UserID: auth.NewID(), Role: tempwatch.RoleAdmin}
	for _, tt := range []struct {
		name, session string
		want          int
	}{
		{"live session", "sess-live", http.StatusOK},
		{"ended session", "sess-ended", http.StatusUnauthorized},
		{"no session", "", http.StatusUnauthorized},
		{"session unreadable", "sess-unreadable", http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := is.Issue(p, tt.session)
			require.NoError(t, err)
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/x", nil)
			req.Header.Set("Authorization", "Bearer "+tok.Token)
			h.ServeHTTP(rec, req)
			assert.Equal(t, tt.want, rec.Code, rec.Body.String())
		})
	}
}

func TestLoadJWTConfigErrors(t *testing.T) {
	t.Parallel()
	k1, pub1 := auth.NewKeyPair("k1")
	_, secret, _ := strings.Cut(k1, ":")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	rsaDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	require.NoError(t, err)
	rsaPKCS8 := base64.StdEncoding.EncodeToString(rsaDER)
	signer, verifier := auth.LoadJWTSigner, auth.LoadJWTVerifier
	tests := []struct {
		name string
		load func(*config.Reader) auth.JWTConfig
		env  map[string]string
		want string
	}{
		{"missing signing keys", signer, map[string]string{}, "JWT_SIGNING_KEYS is required"},
		{"missing public keys", verifier, map[string]string{}, "JWT_PUBLIC_KEYS is required"},
		{"a verifier ignores signing keys", verifier, map[string]string{"JWT_SIGNING_KEYS": k1}, "JWT_PUBLIC_KEYS is required"},
		{"short key", signer, map[string]string{"JWT_SIGNING_KEYS": "k1:c2hvcnQ="}, `JWT_SIGNING_KEYS key of kid "k1" is neither a 32-byte Ed25519 seed nor a PKCS#8 key (5 bytes)`},
		{"an RSA key", signer, map[string]string{"JWT_SIGNING_KEYS": "k1:" + rsaPKCS8}, `key of kid "k1" is a PKCS#8 *rsa.PrivateKey, want an Ed25519 key`},
		{"short public key", verifier, map[string]string{"JWT_PUBLIC_KEYS": "k1:c2hvcnQ="}, `JWT_PUBLIC_KEYS key of kid "k1" is neither a 32-byte Ed25519 public key`},
		{"not base64", signer, map[string]string{"JWT_SIGNING_KEYS": "k1:!!!"}, `key of kid "k1" is not base64`},
		{"no kid", verifier, map[string]string{"JWT_PUBLIC_KEYS": "abc"}, "not kid:base64key"},
		{"kid twice", verifier, map[string]string{"JWT_PUBLIC_KEYS": pub1 + "," + pub1}, `kid "k1" is listed twice`},
		{"unknown active", signer, map[string]string{"JWT_SIGNING_KEYS": k1, "JWT_ACTIVE_KID": "k2"}, `JWT_ACTIVE_KID = "k2" is not a kid listed in JWT_SIGNING_KEYS`},
		{"bad ttl", signer, map[string]string{"JWT_SIGNING_KEYS": k1, "JWT_ACCESS_TTL": "1s"}, "JWT_ACCESS_TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := config.NewReader(config.MapEnv(tt.env))
			tt.load(r)
			require.Error(t, r.Err())
			assert.Contains(t, r.Err().Error(), tt.want)
			assert.NotContains(t, r.Err().Error(), secret, "a config error never shows a key")
		})
	}
}

// Both key forms load and agree: a seed and its PKCS#8 encoding are the same
// key; a raw public key, its PKIX encoding and a JWKS x value verify alike.
func TestLoadJWTConfigKeyForms(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	seed := mustSigner(t, map[string]string{"JWT_SIGNING_KEYS": "k:" + base64.StdEncoding.EncodeToString(priv.Seed())})
	der := mustSigner(t, map[string]string{"JWT_SIGNING_KEYS": "k:" + base64.StdEncoding.EncodeToString(pkcs8)})
	assert.True(t, seed.SigningKeys["k"].Equal(der.SigningKeys["k"]))
	tok, err := auth.NewIssuer(seed).Issue(tempwatch.Principal{UserID: auth.NewID(), Role: tempwatch.RoleAdmin}, "")
	require.NoError(t, err)
	for name, value := range map[string]string{
		"raw":  base64.StdEncoding.EncodeToString(pub),
		"pkix": base64.StdEncoding.EncodeToString(pkix),
		"jwks": seed.JWKS().Keys[0].X,
	} {
		_, err := auth.NewVerifier(mustVerifier(t, map[string]string{"JWT_PUBLIC_KEYS": "k:" + value})).Verify(tok.Token)
		assert.NoError(t, err, "public key as %s", name)
	}
}

// A verifier holds no private key: it cannot issue, and its configuration
// has nothing to sign with.
func TestVerifierCannotSign(t *testing.T) {
	t.Parallel()
	_, pub := auth.NewKeyPair("k1")
	cfg := mustVerifier(t, map[string]string{"JWT_PUBLIC_KEYS": pub})
	assert.Empty(t, cfg.SigningKeys)
	_, err := auth.NewIssuer(cfg).Issue(tempwatch.Principal{UserID: auth.NewID(), Role: tempwatch.RoleAdmin}, "")
	assert.ErrorContains(t, err, "signing key missing")
}

// TestRotationByKid follows the README's rotation procedure: tokens of the
// old key verify while both public keys are listed, and are refused once the
// old one is removed; the JWKS lists both during the overlap.
func TestRotationByKid(t *testing.T) {
	t.Parallel()
	oldSigning, oldPublic := auth.NewKeyPair("2026-01")
	newSigning, newPublic := auth.NewKeyPair("2026-07")
	p := tempwatch.Principal{UserID: auth.NewID(), Role: tempwatch.RoleAdmin}
	issue := func(cfg auth.JWTConfig) string {
		t.Helper()
		tok, err := auth.NewIssuer(cfg).Issue(p, "")
		require.NoError(t, err)
		return tok.Token
	}
	verify := func(publicKeys, token string) error {
		_, err := auth.NewVerifier(mustVerifier(t, map[string]string{"JWT_PUBLIC_KEYS": publicKeys})).Verify(token)
		return err
	}
	kids := func(set auth.JWKS) []string {
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.KeyID)
		}
		return out
	}

	before := mustSigner(t, map[string]string{"JWT_SIGNING_KEYS": oldSigning})
	oldToken := issue(before)
	require.NoError(t, verify(oldPublic, oldToken))

	// 1. The new key is added everywhere; the old one still signs.
	added := mustSigner(t, map[string]string{"JWT_SIGNING_KEYS": oldSigning + "," + newSigning})
	assert.Equal(t, []string{"2026-01", "2026-07"}, kids(added.JWKS()), "the JWKS lists both during the overlap")
	assert.Equal(t, "2026-01", added.ActiveKID)
	// 2. The new key signs; tokens of both verify everywhere.
	switched := mustSigner(t, map[string]string{"JWT_SIGNING_KEYS": oldSigning + "," + newSigning, "JWT_ACTIVE_KID": "2026-07"})
	newToken := issue(switched)
	both := oldPublic + "," + newPublic
	assert.NoError(t, verify(both, oldToken), "an old token verifies while both keys are listed")
	assert.NoError(t, verify(both, newToken))
	_, err := auth.NewVerifier(switched).Verify(oldToken)
	assert.NoError(t, err, "the auth function verifies the old token too")
	assert.Equal(t, []string{"2026-01", "2026-07"}, kids(switched.JWKS()))
	// 3. The old key is removed: its tokens are refused, the new ones are not.
	after := mustSigner(t, map[string]string{"JWT_SIGNING_KEYS": newSigning})
	assert.ErrorIs(t, verify(newPublic, oldToken), auth.ErrInvalidToken, "an old token is refused once its key is removed")
	_, err = auth.NewVerifier(after).Verify(oldToken)
	assert.ErrorIs(t, err, auth.ErrInvalidToken)
	assert.NoError(t, verify(newPublic, newToken))
	assert.Equal(t, []string{"2026-07"}, kids(after.JWKS()))
}
