package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var _ tempwatch.RefreshTokenStore = (*RefreshTokenStore)(nil)

// RefreshTokenStore keeps refresh-token hashes in PostgreSQL.
type RefreshTokenStore struct{ db *pgxpool.Pool }

// NewRefreshTokenStore returns a RefreshTokenStore over db.
func NewRefreshTokenStore(db *pgxpool.Pool) *RefreshTokenStore { return &RefreshTokenStore{db: db} }

// CreateRefreshToken stores t if its user's cutoff is still t.ValidAfter.
// The user's row is share-locked, so a change that ends the user's tokens
// either commits first (and t is refused) or waits for t, and then revokes it.
func (s *RefreshTokenStore) CreateRefreshToken(ctx context.Context, t tempwatch.RefreshToken) error {
	tag, err := s.db.Exec(ctx, `INSERT INTO refresh_tokens (family_id, user_id, token_hash, expires_at)
		SELECT $1, id, $3, $4 FROM users WHERE id = $2 AND tokens_valid_after = $5 FOR SHARE`,
		t.FamilyID, t.UserID, t.Hash, t.ExpiresAt, t.ValidAfter)
	if err != nil {
		return translate(err, "Refresh token")
	}
	if tag.RowsAffected() == 0 {
		return tempwatch.ErrRefreshInvalid
	}
	return nil
}

// RotateRefreshToken marks the token used and stores next in its family, in
// one transaction holding the old row's lock, so two concurrent refreshes
// with the same token cannot both succeed: the second sees it used.
func (s *RefreshTokenStore) RotateRefreshToken(ctx context.Context, oldHash []byte, next *tempwatch.RefreshToken) (tempwatch.RefreshToken, error) {
	var old tempwatch.RefreshToken
	var expiresAt time.Time
	var used, revoked bool
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT t.family_id, t.user_id, t.expires_at, t.used_at IS NOT NULL, t.revoked_at IS NOT NULL,
				u.tokens_valid_after
			FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1 FOR UPDATE OF t`, oldHash).
			Scan(&old.FamilyID, &old.UserID, &expiresAt, &used, &revoked, &old.ValidAfter)
		if errors.Is(err, pgx.ErrNoRows) {
			return tempwatch.ErrRefreshInvalid
		}
		if err != nil {
			return fmt.Errorf("find refresh token: %w", err)
		}
		old.Hash, old.ExpiresAt = oldHash, expiresAt
		switch {
		case used:
			// Reuse: someone holds a copy. Revoke the family, commit, refuse.
			if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now()
				WHERE family_id = $1 AND revoked_at IS NULL`, old.FamilyID); err != nil {
				return fmt.Errorf("revoke refresh family: %w", err)
			}
			return nil
		case revoked || !expiresAt.After(time.Now()):
			return tempwatch.ErrRefreshInvalid
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1`, oldHash); err != nil {
			return fmt.Errorf("mark refresh token used: %w", err)
		}
		next.FamilyID, next.UserID = old.FamilyID, old.UserID
		_, err = tx.Exec(ctx, `INSERT INTO refresh_tokens (family_id, user_id, token_hash, expires_at)
			VALUES ($1, $2, $3, $4)`, next.FamilyID, next.UserID, next.Hash, next.ExpiresAt)
		return translate(err, "Refresh token")
	})
	if err != nil {
		return tempwatch.RefreshToken{}, err
	}
	if used {
		return old, tempwatch.ErrRefreshReused
	}
	return old, nil
}

// RevokeRefreshFamily revokes every token of userID's session familyID.
func (s *RefreshTokenStore) RevokeRefreshFamily(ctx context.Context, userID, familyID string) error {
	_, err := s.db.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now()
		WHERE user_id = $1 AND family_id = $2 AND revoked_at IS NULL`, userID, familyID)
	if err != nil {
		return fmt.Errorf("revoke refresh family: %w", err)
	}
	return nil
}

var _ tempwatch.TokenCutoffs = (*SessionStates)(nil)

// SessionStates is the record of whether each session (refresh-token
// family) is live, as a tempwatch.TokenCutoffs over session ids, so that
// redis.NewSessionStates keeps it as it keeps the users' cutoffs.
type SessionStates struct{ db *pgxpool.Pool }

// NewSessionStates returns the sessions' states over db.
func NewSessionStates(db *pgxpool.Pool) *SessionStates { return &SessionStates{db: db} }

// TokensValidAfter returns the epoch for a live session; a session with a
// revoked token (logout, reuse, a change that ended its user's sessions) or
// no token at all (no such session, or its user deleted) is ENOTFOUND.
func (s *SessionStates) TokensValidAfter(ctx context.Context, sessionID string) (time.Time, error) {
	if !tempwatch.IsUUID(sessionID) {
		return time.Time{}, tempwatch.NotFound("Session")
	}
	var live bool
	err := s.db.QueryRow(ctx, `SELECT count(*) > 0 AND count(revoked_at) = 0 FROM refresh_tokens WHERE family_id = $1`,
		sessionID).Scan(&live)
	if err != nil {
		return time.Time{}, fmt.Errorf("read session state: %w", err)
	}
	if !live {
		return time.Time{}, tempwatch.NotFound("Session")
	}
	return time.UnixMicro(0), nil
}
