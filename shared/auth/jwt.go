// Package auth issues and verifies access tokens (JWT), hashes and checks
// passwords, and puts the caller of each request into its context
// (Authenticated); who may do what is the domain's policy (tempwatch).
package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tempwatch/tempwatch/shared/config"
)

// Algorithm is the one JWT signing algorithm tempwatch issues and accepts.
// Every token whose header names another one (none included) is refused.
const Algorithm = "HS256"

// MinKeyBytes is the shortest HMAC secret accepted (RFC 7518 §3.2: at least
// the hash size).
const MinKeyBytes = 32

// JWTConfig holds the signing keys and token policy, shared by the auth
// function (which issues tokens) and every function that verifies them.
type JWTConfig struct {
	// Keys maps a key id (the token's kid header) to its HMAC secret. Old
	// keys stay listed after a rotation until their tokens have expired.
	Keys map[string][]byte
	// ActiveKID names the key new tokens are signed with.
	ActiveKID  string
	Issuer     string
	Audience   string
	AccessTTL  time.Duration
	RefreshTTL time.Duration
}

// LoadJWTConfig reads the JWT_* variables through r; problems are recorded in r:
//
//	JWT_KEYS        comma-separated kid:base64secret pairs (secret ≥ 32 bytes), required
//	JWT_ACTIVE_KID  kid that signs new tokens (default: the first of JWT_KEYS)
//	JWT_ISSUER      iss claim (default "tempwatch")
//	JWT_AUDIENCE    aud claim (default "tempwatch-api")
//	JWT_ACCESS_TTL  access token lifetime (default 15m, 1m–24h)
//	JWT_REFRESH_TTL refresh token lifetime (default 720h, 1h–8760h)
func LoadJWTConfig(r *config.Reader) JWTConfig {
	cfg := JWTConfig{
		Issuer:     r.String("JWT_ISSUER", "tempwatch"),
		Audience:   r.String("JWT_AUDIENCE", "tempwatch-api"),
		AccessTTL:  r.Duration("JWT_ACCESS_TTL", 15*time.Minute, time.Minute, 24*time.Hour),
		RefreshTTL: r.Duration("JWT_REFRESH_TTL", 720*time.Hour, time.Hour, 8760*time.Hour),
	}
	keys, first, err := parseKeys(r.Required("JWT_KEYS"))
	if err != nil {
		r.Fail("JWT_KEYS", err.Error())
	}
	cfg.Keys = keys
	cfg.ActiveKID = r.String("JWT_ACTIVE_KID", first)
	if _, ok := keys[cfg.ActiveKID]; !ok && len(keys) > 0 {
		r.Fail("JWT_ACTIVE_KID", fmt.Sprintf("= %q is not a kid listed in JWT_KEYS", cfg.ActiveKID))
	}
	return cfg
}

// parseKeys parses "kid:base64secret,kid2:base64secret2" and returns the keys
// and the first kid. Error messages name kids, never secrets.
func parseKeys(s string) (map[string][]byte, string, error) {
	keys := map[string][]byte{}
	var first string
	if strings.TrimSpace(s) == "" {
		return keys, "", nil
	}
	for i, part := range strings.Split(s, ",") {
		kid, secret, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || kid == "" {
			return nil, "", fmt.Errorf("entry %d is not kid:base64secret", i+1)
		}
		b, err := base64.StdEncoding.DecodeString(secret)
		if err != nil {
			if b, err = base64.RawURLEncoding.DecodeString(secret); err != nil {
				return nil, "", fmt.Errorf("secret of kid %q is not base64", kid)
			}
		}
		if len(b) < MinKeyBytes {
			return nil, "", fmt.Errorf("secret of kid %q is %d bytes, want at least %d", kid, len(b), MinKeyBytes)
		}
		if _, dup := keys[kid]; dup {
			return nil, "", fmt.Errorf("kid %q is listed twice", kid)
		}
		keys[kid] = b
		if first == "" {
			first = kid
		}
	}
	return keys, first, nil
}

// NewKey returns a random secret in the JWT_KEYS form "kid:base64secret",
// for development set-ups and tests.
func NewKey(kid string) string {
	b := make([]byte, MinKeyBytes)
	_, _ = rand.Read(b)
	return kid + ":" + base64.StdEncoding.EncodeToString(b)
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

// Issuer signs access tokens with the active key.
type Issuer struct {
	cfg JWTConfig
	now func() time.Time
}

// NewIssuer returns an Issuer for cfg.
func NewIssuer(cfg JWTConfig) *Issuer { return &Issuer{cfg: cfg, now: time.Now} }

// Issue signs an access token for p in session sessionID (the refresh-token
// family, so logout and reuse detection can revoke it).
func (is *Issuer) Issue(p tempwatch.Principal, sessionID string) (AccessToken, error) {
	key, ok := is.cfg.Keys[is.cfg.ActiveKID]
	if !ok {
		return AccessToken{}, errors.New("auth: active JWT key missing")
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

// Verifier checks access tokens: signature with the key named by kid, the
// pinned algorithm, exp (required), iat, nbf, iss and aud.
type Verifier struct {
	cfg     JWTConfig
	parser  *jwt.Parser
	revoked tempwatch.RevocationList
	cutoffs tempwatch.TokenCutoffs
}

// NewVerifier returns a Verifier for cfg. Without WithRevocations and
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

// WithRevocations returns a copy of v that also refuses tokens whose id or
// session the list holds (logout, refresh-token reuse).
func (v *Verifier) WithRevocations(rl tempwatch.RevocationList) *Verifier {
	c := *v
	c.revoked = rl
	return &c
}

// WithCutoffs returns a copy of v that also refuses a token issued under an
// earlier cutoff than its user's, or whose user is gone (tempwatch.TokenCutoffs).
func (v *Verifier) WithCutoffs(c tempwatch.TokenCutoffs) *Verifier {
	cp := *v
	cp.cutoffs = c
	return &cp
}

// Verify checks token's signature and claims and returns its Principal. It
// consults neither the user's cutoff nor the revocation list; Authenticate does.
func (v *Verifier) Verify(token string) (tempwatch.Principal, error) {
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := v.cfg.Keys[kid]
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
