package tempwatch

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// RefreshToken is a stored refresh token: only the SHA-256 of the secret the
// caller holds. Tokens of one login share a FamilyID (the session).
type RefreshToken struct {
	FamilyID  string
	UserID    string
	Hash      []byte
	ExpiresAt time.Time
	// ValidAfter is the user's token cutoff (TokenCutoffs) the token is
	// issued under, or was read with when it was rotated.
	ValidAfter time.Time
}

// RefreshTokenStore keeps refresh tokens.
type RefreshTokenStore interface {
	// CreateRefreshToken stores t, unless its user's cutoff is no longer
	// t.ValidAfter (a change ended the user's tokens since they were read):
	// that is ErrRefreshInvalid.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken marks the live token whose hash is oldHash used and
	// stores next (given only Hash and ExpiresAt) in the same family, returning
	// the old token with its user's cutoff as of the rotation (ValidAfter). An
	// unknown, expired or revoked token is EUNAUTHORIZED; a
	// token already used is ErrRefreshReused, after the whole family has been
	// revoked, and the old token is returned so its session can be revoked too.
	RotateRefreshToken(ctx context.Context, oldHash []byte, next *RefreshToken) (RefreshToken, error)
	// RevokeRefreshFamily revokes every token of userID's session familyID.
	RevokeRefreshFamily(ctx context.Context, userID, familyID string) error
}

// ErrRefreshReused is returned when a refresh token is presented twice.
var ErrRefreshReused = &Error{Code: EUNAUTHORIZED, Message: "The refresh token is invalid, expired or revoked."}

// ErrRefreshInvalid is returned for an unknown, expired or revoked refresh token.
var ErrRefreshInvalid = &Error{Code: EUNAUTHORIZED, Message: "The refresh token is invalid, expired or revoked."}

// NewRefreshSecret returns a random 32-byte refresh token (base64url, what the
// caller holds) and its SHA-256 (what is stored).
func NewRefreshSecret() (secret string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, HashRefreshSecret(secret)
}

// HashRefreshSecret returns the stored form of a refresh token.
func HashRefreshSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Limiter counts failures (such as failed password checks) per key in fixed
// windows. It never fails its caller: when its counters cannot be reached it
// reports nobody blocked and counts nothing, since locking every user out
// whenever the cache blinks is worse than a short window without
// throttling, and argon2id keeps each guess expensive.
type Limiter interface {
	// Hit counts one failure for key in a window of length window.
	Hit(ctx context.Context, key string, window time.Duration)
	// Blocked reports, when key has limit or more failures in its window, how
	// long until the window ends; 0 when key is not blocked.
	Blocked(ctx context.Context, key string, limit int) time.Duration
	// Reset forgets the failures of key.
	Reset(ctx context.Context, key string)
}

// TokenCutoffs tells from when each user's tokens count. A change that takes
// access away (deleting the user or their client, a new role or client, a
// new password) moves the user's cutoff forward in its own transaction;
// every authenticated request then refuses a token issued under an earlier
// cutoff. The cutoff a token carries is the stored value it was issued
// under, not a clock reading, so no clock skew and no second-granular iat
// can let a token from before a change pass, or refuse one issued after it.
type TokenCutoffs interface {
	// TokensValidAfter returns user id's cutoff: ENOTFOUND when there is no
	// such user (deleted, so none of their tokens passes); any other error
	// means it could not be read, and the token must be refused.
	TokensValidAfter(ctx context.Context, userID string) (time.Time, error)
}

// TokenStatus is what a token check learns about one token from the stores:
// its user's cutoff and its session's state, each as a TokenCutoffs answers
// (for sessions: a live one's tokens count from the epoch; an ended one,
// logged out or its refresh token reused, is ENOTFOUND).
type TokenStatus struct {
	ValidAfter time.Time
	CutoffErr  error // the user's: ENOTFOUND for a deleted user, else unreadable
	SessionErr error // the session's: ENOTFOUND for an ended session, else unreadable
}

// TokenChecker answers both questions about one token at once, so a store
// that holds both asks its server once.
type TokenChecker interface {
	// CheckToken returns user userID's cutoff and session sessionID's state.
	CheckToken(ctx context.Context, userID, sessionID string) TokenStatus
}
