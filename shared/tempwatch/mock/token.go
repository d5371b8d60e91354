package mock

import (
	"context"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var (
	_ tempwatch.RefreshTokenStore = (*RefreshTokenStore)(nil)
	_ tempwatch.Limiter           = (*Limiter)(nil)
	_ tempwatch.TokenCutoffs      = (*TokenCutoffs)(nil)
	_ tempwatch.TokenChecker      = (*TokenChecker)(nil)
)

// RefreshTokenStore is a fake tempwatch.RefreshTokenStore.
type RefreshTokenStore struct {
	CreateRefreshTokenFn  func(ctx context.Context, t tempwatch.RefreshToken) error
	RotateRefreshTokenFn  func(ctx context.Context, oldHash []byte, next *tempwatch.RefreshToken) (tempwatch.RefreshToken, error)
	RevokeRefreshFamilyFn func(ctx context.Context, userID, familyID string) error
}

// CreateRefreshToken calls CreateRefreshTokenFn.
func (s *RefreshTokenStore) CreateRefreshToken(ctx context.Context, t tempwatch.RefreshToken) error {
	return s.CreateRefreshTokenFn(ctx, t)
}

// RotateRefreshToken calls RotateRefreshTokenFn.
func (s *RefreshTokenStore) RotateRefreshToken(ctx context.Context, oldHash []byte, next *tempwatch.RefreshToken) (tempwatch.RefreshToken, error) {
	return s.RotateRefreshTokenFn(ctx, oldHash, next)
}

// RevokeRefreshFamily calls RevokeRefreshFamilyFn.
func (s *RefreshTokenStore) RevokeRefreshFamily(ctx context.Context, userID, familyID string) error {
	return s.RevokeRefreshFamilyFn(ctx, userID, familyID)
}

// Limiter is a fake tempwatch.Limiter.
type Limiter struct {
	HitFn     func(ctx context.Context, key string, window time.Duration)
	BlockedFn func(ctx context.Context, key string, limit int) time.Duration
	ResetFn   func(ctx context.Context, key string)
}

// Hit calls HitFn.
func (l *Limiter) Hit(ctx context.Context, key string, window time.Duration) {
	l.HitFn(ctx, key, window)
}

// Blocked calls BlockedFn.
func (l *Limiter) Blocked(ctx context.Context, key string, limit int) time.Duration {
	return l.BlockedFn(ctx, key, limit)
}

// Reset calls ResetFn.
func (l *Limiter) Reset(ctx context.Context, key string) {
	l.ResetFn(ctx, key)
}

// TokenCutoffs is a fake tempwatch.TokenCutoffs.
type TokenCutoffs struct {
	TokensValidAfterFn func(ctx context.Context, userID string) (time.Time, error)
}

// TokensValidAfter calls TokensValidAfterFn.
func (c *TokenCutoffs) TokensValidAfter(ctx context.Context, userID string) (time.Time, error) {
	return c.TokensValidAfterFn(ctx, userID)
}

// TokenChecker is a fake tempwatch.TokenChecker.
type TokenChecker struct {
	CheckTokenFn func(ctx context.Context, userID, sessionID string) tempwatch.TokenStatus
}

// CheckToken calls CheckTokenFn.
func (c *TokenChecker) CheckToken(ctx context.Context, userID, sessionID string) tempwatch.TokenStatus {
	return c.CheckTokenFn(ctx, userID, sessionID)
}
