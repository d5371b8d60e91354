package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Hashes the store keeps as they are; they need not be real.
const (
	hashA = "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$a2V5"
	hashB = "$argon2id$v=19$m=1,t=1,p=1$c2FsdDI$a2V5Mg"
	hashC = "$argon2id$v=19$m=1,t=1,p=1$c2FsdDM$a2V5Mw"
)

// UpdateUser writes every field back, so a copy read before another change
// would undo it: refused.
func TestUpdateUserRefusesAStaleCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	us := postgres.NewUserStore(pgtest.MustDB(t))
	u := &tempwatch.User{Email: "ann@example.com", Role: tempwatch.RoleAdmin, PasswordHash: hashA}
	require.NoError(t, us.CreateUser(ctx, u))

	stale, err := us.FindUserByID(ctx, u.ID)
	require.NoError(t, err)
	_, err = us.ChangePassword(ctx, u.ID, hashA, hashB, time.Now())
	require.NoError(t, err)

	stale.Name = "Ann"
	err = us.UpdateUser(ctx, stale)
	assert.Equal(t, tempwatch.ECONFLICT, tempwatch.ErrorCode(err), "UpdateUser(stale copy) = %v", err)
	fresh, err := us.FindUserByID(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, hashB, fresh.PasswordHash, "the password change stands")

	fresh.Name = "Ann"
	require.NoError(t, us.UpdateUser(ctx, fresh))
	assert.Equal(t, "Ann", fresh.Name)
	assert.Equal(t, hashB, fresh.PasswordHash)
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustDB(t)
	us, ts := postgres.NewUserStore(db), postgres.NewRefreshTokenStore(db)
	newUser := func(email string) *tempwatch.User {
		u := &tempwatch.User{Email: email, Role: tempwatch.RoleAdmin, PasswordHash: hashA}
		require.NoError(t, us.CreateUser(ctx, u))
		return u
	}
	ann, bob := newUser("ann@example.com"), newUser("bob@example.com")
	issue := func(userID string, age time.Duration) (family string, hash []byte) {
		family = auth.NewID()
		_, hash = tempwatch.NewRefreshSecret()
		require.NoError(t, ts.CreateRefreshToken(ctx, tempwatch.RefreshToken{FamilyID: family, UserID: userID, Hash: hash, ExpiresAt: time.Now().Add(time.Hour)}))
		_, err := db.Exec(ctx, `UPDATE refresh_tokens SET created_at = now() - $2 * interval '1 second' WHERE token_hash = $1`, hash, age.Seconds())
		require.NoError(t, err)
		return family, hash
	}
	rotate := func(h []byte) error {
		_, nh := tempwatch.NewRefreshSecret()
		_, err := ts.RotateRefreshToken(ctx, h, &tempwatch.RefreshToken{Hash: nh, ExpiresAt: time.Now().Add(time.Hour)})
		return err
	}
	recent, recentHash := issue(ann.ID, time.Minute)
	_, oldHash := issue(ann.ID, time.Hour)
	_, bobHash := issue(bob.ID, time.Minute)

	_, err := us.ChangePassword(ctx, ann.ID, hashC, hashB, time.Now())
	assert.Equal(t, tempwatch.ECONFLICT, tempwatch.ErrorCode(err), "ChangePassword(wrong old hash) = %v", err)
	assert.NoError(t, rotate(recentHash), "a refused change revokes nothing")

	sessions, err := us.ChangePassword(ctx, ann.ID, hashA, hashB, time.Now().Add(-16*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, []string{recent}, sessions, "only sessions that issued a token in the window may hold live access tokens")
	assert.ErrorIs(t, rotate(oldHash), tempwatch.ErrRefreshInvalid, "every refresh token of the user is revoked")
	assert.NoError(t, rotate(bobHash), "another user's tokens are not")
	got, err := us.FindUserByID(ctx, ann.ID)
	require.NoError(t, err)
	assert.Equal(t, hashB, got.PasswordHash)

	_, err = us.ChangePassword(ctx, auth.NewID(), hashA, hashB, time.Now())
	assert.Equal(t, tempwatch.ECONFLICT, tempwatch.ErrorCode(err), "unknown user")
	_, err = us.ChangePassword(ctx, "nope", hashA, hashB, time.Now())
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err))
}
