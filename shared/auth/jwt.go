// Package auth issues and verifies access tokens (JWT), hashes and checks
// passwords, and puts the caller of each request into its context
// (Authenticated); who may do what is the domain's policy (tempwatch).
package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tempwatch/tempwatch/shared/config"
)

// Algorithm is the one JWT signing algorithm tempwatch issues and accepts:
// EdDSA over Ed25519 (RFC 8037). Every token whose header names another one
// (HS256 and none included) is refused.
const Algorithm = "EdDSA"

// JWTConfig holds the token keys and policy. The auth function's (LoadJWTSigner)
// has the private keys and their public halves; every other function's
// (LoadJWTVerifier) has public keys only, so it can check tokens but not make
// them.
type JWTConfig struct {
	// PublicKeys maps a key id (the token's kid header) to the key that
	// verifies its tokens. Old keys stay listed after a rotation until their
	// tokens have expired.
	PublicKeys map[string]ed25519.PublicKey
	// SigningKeys maps a kid to its private key; empty but in the auth function.
	SigningKeys map[string]ed25519.PrivateKey
	// ActiveKID names the signing key new tokens are signed with.
	ActiveKID  string
	Issuer     string
	Audience   string
	AccessTTL  time.Duration
	RefreshTTL time.Duration
}

// PublicOnly is cfg without its private keys: what a function that only
// verifies tokens holds.
func (cfg JWTConfig) PublicOnly() JWTConfig {
	cfg.SigningKeys = nil
	cfg.ActiveKID = ""
	return cfg
}

// LoadJWTVerifier reads what a function that checks tokens needs; problems are
// recorded in r:
//
//	JWT_PUBLIC_KEYS comma-separated kid:base64 Ed25519 public keys (32 bytes raw,
//	                or PKIX DER), required; list the old and the new during a rotation
//	JWT_ISSUER      iss claim (default "tempwatch")
//	JWT_AUDIENCE    aud claim (default "tempwatch-api")
func LoadJWTVerifier(r *config.Reader) JWTConfig {
	cfg := JWTConfig{
		Issuer:   r.String("JWT_ISSUER", "tempwatch"),
		Audience: r.String("JWT_AUDIENCE", "tempwatch-api"),
	}
	var err error
	if cfg.PublicKeys, _, err = parseKeys(r.Required("JWT_PUBLIC_KEYS"), parsePublicKey); err != nil {
		r.Fail("JWT_PUBLIC_KEYS", err.Error())
	}
	return cfg
}

// LoadJWTSigner reads what the auth function, the one that issues tokens,
// needs; problems are recorded in r. It verifies tokens with the public
// halves of its signing keys.
//
//	JWT_SIGNING_KEYS comma-separated kid:base64 Ed25519 private keys (32-byte seed,
//	                 or PKCS#8 DER), required
//	JWT_ACTIVE_KID   kid that signs new tokens (default: the first of JWT_SIGNING_KEYS)
//	JWT_ISSUER       iss claim (default "tempwatch")
//	JWT_AUDIENCE     aud claim (default "tempwatch-api")
//	JWT_ACCESS_TTL   access token lifetime (default 15m, 1m–24h)
//	JWT_REFRESH_TTL  refresh token lifetime (default 720h, 1h–8760h)
func LoadJWTSigner(r *config.Reader) JWTConfig {
	cfg := JWTConfig{
		Issuer:     r.String("JWT_ISSUER", "tempwatch"),
		Audience:   r.String("JWT_AUDIENCE", "tempwatch-api"),
		AccessTTL:  r.Duration("JWT_ACCESS_TTL", 15*time.Minute, time.Minute, 24*time.Hour),
		RefreshTTL: r.Duration("JWT_REFRESH_TTL", 720*time.Hour, time.Hour, 8760*time.Hour),
	}
	keys, first, err := parseKeys(r.Required("JWT_SIGNING_KEYS"), parsePrivateKey)
	if err != nil {
		r.Fail("JWT_SIGNING_KEYS", err.Error())
	}
	cfg.SigningKeys = keys
	cfg.PublicKeys = make(map[string]ed25519.PublicKey, len(keys))
	for kid, k := range keys {
		cfg.PublicKeys[kid] = k.Public().(ed25519.PublicKey)
	}
	cfg.ActiveKID = r.String("JWT_ACTIVE_KID", first)
	if _, ok := keys[cfg.ActiveKID]; !ok && len(keys) > 0 {
		r.Fail("JWT_ACTIVE_KID", fmt.Sprintf("= %q is not a kid listed in JWT_SIGNING_KEYS", cfg.ActiveKID))
	}
	return cfg
}

// parseKeys parses "kid:base64key,kid2:base64key2" with parse and returns the
// keys and the first kid. Error messages name kids, never keys.
func parseKeys[K any](s string, parse func([]byte) (K, error)) (map[string]K, string, error) {
	keys := map[string]K{}
	var first string
	if strings.TrimSpace(s) == "" {
		return keys, "", nil
	}
	for i, part := range strings.Split(s, ",") {
		kid, encoded, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || kid == "" {
			return nil, "", fmt.Errorf("entry %d is not kid:base64key", i+1)
		}
		b, err := decodeBase64(encoded)
		if err != nil {
			return nil, "", fmt.Errorf("key of kid %q is not base64", kid)
		}
		k, err := parse(b)
		if err != nil {
			return nil, "", fmt.Errorf("key of kid %q %v", kid, err)
		}
		if _, dup := keys[kid]; dup {
			return nil, "", fmt.Errorf("kid %q is listed twice", kid)
		}
		keys[kid] = k
		if first == "" {
			first = kid
		}
	}
	return keys, first, nil
}

// decodeBase64 takes standard or URL-safe base64, padded or not (a JWKS x
// value pastes as it is).
func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// parsePrivateKey reads a 32-byte Ed25519 seed or a PKCS#8 DER private key.
func parsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	if len(b) == ed25519.SeedSize {
		return ed25519.NewKeyFromSeed(b), nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("is neither a %d-byte Ed25519 seed nor a PKCS#8 key (%d bytes)", ed25519.SeedSize, len(b))
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("is a PKCS#8 %T, want an Ed25519 key", k)
	}
	return ek, nil
}

// parsePublicKey reads a 32-byte Ed25519 public key or a PKIX DER one.
func parsePublicKey(b []byte) (ed25519.PublicKey, error) {
	if len(b) == ed25519.PublicKeySize {
		return ed25519.PublicKey(b), nil
	}
	k, err := x509.ParsePKIXPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("is neither a %d-byte Ed25519 public key nor a PKIX one (%d bytes)", ed25519.PublicKeySize, len(b))
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("is a PKIX %T, want an Ed25519 key", k)
	}
	return ek, nil
}

// PublicKeysValue returns cfg's public keys in the JWT_PUBLIC_KEYS form,
// sorted by kid: what a signer's verifiers are given.
func (cfg JWTConfig) PublicKeysValue() string {
	kids := make([]string, 0, len(cfg.PublicKeys))
	for kid := range cfg.PublicKeys {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	for i, kid := range kids {
		kids[i] = kid + ":" + base64.StdEncoding.EncodeToString(cfg.PublicKeys[kid])
	}
	return strings.Join(kids, ",")
}

// NewKeyPair returns a fresh Ed25519 key named kid in the two forms the
// configuration takes: "kid:base64seed" for JWT_SIGNING_KEYS (the auth
// function only) and "kid:base64public" for JWT_PUBLIC_KEYS (every function
// that verifies tokens). For key generation (infra/cmd/jwtkeys), development
// set-ups and tests.
func NewKeyPair(kid string) (signing, public string) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("auth: generate Ed25519 key: %v", err)) // crypto/rand does not fail on supported platforms
	}
	return kid + ":" + base64.StdEncoding.EncodeToString(priv.Seed()), kid + ":" + base64.StdEncoding.EncodeToString(pub)
}

// claims is the body of an access token.
type claims struct {
	jwt.RegisteredClaims
	ClientID  string `json:"cid,omitempty"`
	Role      string `json:"role"`
	SessionID string `json:"sid,omitempty"`
	// ValidAfter is the user's token cutoff the token was issued under, in
	// unix microseconds (tempwatch.TokenCutoffs); absent for the cutoff of a
	// user never changed and in tokens of builds before it.
	ValidAfter int64 `json:"tva,omitempty"`
}

// AccessToken is a signed access token and what a login response tells about it.
type AccessToken struct {
	Token     string
	ID        string // jti
	ExpiresAt time.Time
}

// Issuer signs access tokens with the active signing key.
type Issuer struct {
	cfg JWTConfig
	now func() time.Time
}

// NewIssuer returns an Issuer for cfg.
func NewIssuer(cfg JWTConfig) *Issuer { return &Issuer{cfg: cfg, now: time.Now} }

// Issue signs an access token for p in session sessionID (the refresh-token
// family, so logout and reuse detection can end it). A verifier with a
// checker refuses a token without a session.
func (is *Issuer) Issue(p tempwatch.Principal, sessionID string) (AccessToken, error) {
	key, ok := is.cfg.SigningKeys[is.cfg.ActiveKID]
	if !ok {
		return AccessToken{}, errors.New("auth: active JWT signing key missing (only the auth function signs)")
	}
	now := is.now().Truncate(time.Second)
	exp := now.Add(is.cfg.AccessTTL)
	id := NewID()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    is.cfg.Issuer,
			Subject:   p.UserID,
			Audience:  jwt.ClaimStrings{is.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ID:        id,
		},
		ClientID:  p.ClientID,
		Role:      p.Role,
		SessionID: sessionID,
	}
	if !p.ValidAfter.IsZero() {
		c.ValidAfter = p.ValidAfter.UnixMicro()
	}
	t := jwt.NewWithClaims(jwt.GetSigningMethod(Algorithm), c)
	t.Header["kid"] = is.cfg.ActiveKID
	s, err := t.SignedString(key)
	if err != nil {
		return AccessToken{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return AccessToken{Token: s, ID: id, ExpiresAt: exp}, nil
}

// NewID returns a random UUIDv4 string (token ids, session ids).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ErrInvalidToken is the cause of every refused token. Callers answer 401
// without saying why: the reason is for logs only.
var ErrInvalidToken = errors.New("auth: invalid token")

// Verifier checks access tokens: signature with the public key named by kid,
// the pinned algorithm (EdDSA), exp (required), iat, nbf, iss and aud.
type Verifier struct {
	cfg     JWTConfig
	parser  *jwt.Parser
	cutoffs tempwatch.TokenCutoffs
	checker tempwatch.TokenChecker
}

// NewVerifier returns a Verifier for cfg. Without WithChecker or
// WithCutoffs it checks signatures and claims only.
func NewVerifier(cfg JWTConfig) *Verifier {
	return &Verifier{cfg: cfg, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
	)}
}

// WithCutoffs returns a copy of v that also refuses a token issued under an
// earlier cutoff than its user's, or whose user is gone (tempwatch.TokenCutoffs).
func (v *Verifier) WithCutoffs(c tempwatch.TokenCutoffs) *Verifier {
	cp := *v
	cp.cutoffs = c
	return &cp
}

// WithChecker returns a copy of v that checks both the user's cutoff and
// the token's session through c, in one call (redis.TokenChecks: at most one
// Redis round trip); it takes the place of WithCutoffs.
func (v *Verifier) WithChecker(c tempwatch.TokenChecker) *Verifier {
	cp := *v
	cp.checker = c
	return &cp
}

// Verify checks token's signature and claims and returns its Principal. It
// consults neither the user's cutoff nor the session's state; Authenticate does.
func (v *Verifier) Verify(token string) (tempwatch.Principal, error) {
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := v.cfg.PublicKeys[kid]
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return key, nil
	})
	if err != nil {
		return tempwatch.Principal{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	p := tempwatch.Principal{UserID: c.Subject, ClientID: c.ClientID, Role: c.Role, TokenID: c.ID, SessionID: c.SessionID}
	if c.ExpiresAt != nil {
		p.ExpiresAt = c.ExpiresAt.Time
	}
	switch {
	case c.ValidAfter != 0:
		p.ValidAfter = time.UnixMicro(c.ValidAfter)
	case c.IssuedAt != nil:
		// A token without the claim counts from when it was issued: iat is
		// whole seconds, never later than the issue, so one issued before a
		// change is never taken for one issued after it.
		p.ValidAfter = c.IssuedAt.Time
	}
	if err := p.Validate(); err != nil {
		return tempwatch.Principal{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return p, nil
}
