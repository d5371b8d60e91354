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
	_, err = us.ChangePassword(ctx, u.ID, hashA, hashB)
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
		require.NoError(t, ts.CreateRefreshToken(ctx, tempwatch.RefreshToken{FamilyID: family, UserID: userID, Hash: hash,
			ExpiresAt: time.Now().Add(time.Hour), ValidAfter: mustCutoff(t, us, userID)}))
		_, err := db.Exec(ctx, `UPDATE refresh_tokens SET created_at = now() - $2 * interval '1 second' WHERE token_hash = $1`, hash, age.Seconds())
		require.NoError(t, err)
		return family, hash
	}
	rotate := func(h []byte) error {
		_, nh := tempwatch.NewRefreshSecret()
		_, err := ts.RotateRefreshToken(ctx, h, &tempwatch.RefreshToken{Hash: nh, ExpiresAt: time.Now().Add(time.Hour)})
		return err
	}
	_, recentHash := issue(ann.ID, time.Minute)
	_, oldHash := issue(ann.ID, time.Hour)
	_, bobHash := issue(bob.ID, time.Minute)
	before := mustCutoff(t, us, ann.ID)

	_, err := us.ChangePassword(ctx, ann.ID, hashC, hashB)
	assert.Equal(t, tempwatch.ECONFLICT, tempwatch.ErrorCode(err), "ChangePassword(wrong old hash) = %v", err)
	assert.NoError(t, rotate(recentHash), "a refused change revokes nothing")
	assert.Equal(t, before, mustCutoff(t, us, ann.ID), "a refused change keeps the cutoff")

	cutoff, err := us.ChangePassword(ctx, ann.ID, hashA, hashB)
	require.NoError(t, err)
	assert.True(t, cutoff.After(before), "ChangePassword moved the cutoff from %v to %v", before, cutoff)
	assert.Equal(t, cutoff, mustCutoff(t, us, ann.ID), "the cutoff returned is the one stored")
	assert.ErrorIs(t, rotate(oldHash), tempwatch.ErrRefreshInvalid, "every refresh token of the user is revoked")
	assert.NoError(t, rotate(bobHash), "another user's tokens are not")
	got, err := us.FindUserByID(ctx, ann.ID)
	require.NoError(t, err)
	assert.Equal(t, hashB, got.PasswordHash)

	_, err = us.ChangePassword(ctx, auth.NewID(), hashA, hashB)
	assert.Equal(t, tempwatch.ECONFLICT, tempwatch.ErrorCode(err), "unknown user")
	_, err = us.ChangePassword(ctx, "nope", hashA, hashB)
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err))
}

func mustCutoff(tb testing.TB, us *postgres.UserStore, id string) time.Time {
	tb.Helper()
	t, err := us.TokensValidAfter(context.Background(), id)
	require.NoError(tb, err)
	return t
}

// What takes access away moves the user's token cutoff on and revokes their
// refresh tokens in the same transaction; a name or email change does not.
// A deleted user, and the users of a deleted client, have no cutoff left.
func TestTokenCutoffs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustDB(t)
	us, ts, cs := postgres.NewUserStore(db), postgres.NewRefreshTokenStore(db), postgres.NewClientStore(db)
	client := pgtest.MustClient(t, db, "acme", "")
	admin := &tempwatch.User{Email: "root@example.com", Role: tempwatch.RoleAdmin, PasswordHash: hashA}
	require.NoError(t, us.CreateUser(ctx, admin))
	u := &tempwatch.User{Email: "ops@acme.example", Role: tempwatch.RoleClientAdmin, ClientID: client, PasswordHash: hashA}
	require.NoError(t, us.CreateUser(ctx, u))
	assert.Equal(t, time.Unix(0, 0).UTC(), u.TokensValidAfter.UTC(), "a new user's cutoff is the epoch")
	session := func() []byte {
		_, hash := tempwatch.NewRefreshSecret()
		require.NoError(t, ts.CreateRefreshToken(ctx, tempwatch.RefreshToken{FamilyID: auth.NewID(), UserID: u.ID, Hash: hash,
			ExpiresAt: time.Now().Add(time.Hour), ValidAfter: u.TokensValidAfter}))
		return hash
	}
	rotate := func(h []byte) error {
		_, nh := tempwatch.NewRefreshSecret()
		old, err := ts.RotateRefreshToken(ctx, h, &tempwatch.RefreshToken{Hash: nh, ExpiresAt: time.Now().Add(time.Hour)})
		if err == nil {
			assert.Equal(t, u.TokensValidAfter.UnixMicro(), old.ValidAfter.UnixMicro(), "RotateRefreshToken reads the user's cutoff")
		}
		return err
	}

	for _, tc := range []struct {
		name   string
		change func(u *tempwatch.User)
		ends   bool
	}{
		{"name", func(u *tempwatch.User) { u.Name = "Ops" }, false},
		{"email", func(u *tempwatch.User) { u.Email = "ops2@acme.example" }, false},
		{"role", func(u *tempwatch.User) { u.Role = tempwatch.RoleViewer }, true},
		{"password", func(u *tempwatch.User) { u.PasswordHash = hashB }, true},
		{"client", func(u *tempwatch.User) { u.ClientID = pgtest.MustClient(t, db, "other", "") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refresh := session()
			before := u.TokensValidAfter
			tc.change(u)
			_, lateHash := tempwatch.NewRefreshSecret()
			late := tempwatch.RefreshToken{FamilyID: auth.NewID(), UserID: u.ID, Hash: lateHash, ExpiresAt: time.Now().Add(time.Hour), ValidAfter: before}
			require.NoError(t, us.UpdateUser(ctx, u))
			assert.Equal(t, u.TokensValidAfter, mustCutoff(t, us, u.ID), "UpdateUser fills the stored cutoff")
			// late is a login that read the user before the change and stores
			// its refresh token after it.
			if tc.ends {
				assert.True(t, u.TokensValidAfter.After(before), "the cutoff moved on from %v to %v", before, u.TokensValidAfter)
				assert.ErrorIs(t, rotate(refresh), tempwatch.ErrRefreshInvalid, "the refresh tokens are revoked")
				assert.ErrorIs(t, ts.CreateRefreshToken(ctx, late), tempwatch.ErrRefreshInvalid, "a login that read the user before the change opens no session")
			} else {
				assert.Equal(t, before, u.TokensValidAfter, "the cutoff stays")
				assert.NoError(t, rotate(refresh), "the refresh tokens stay")
				assert.NoError(t, ts.CreateRefreshToken(ctx, late), "a login across a name change opens its session")
			}
		})
	}

	other := &tempwatch.User{Email: "v@acme.example", Role: tempwatch.RoleViewer, ClientID: u.ClientID, PasswordHash: hashA}
	require.NoError(t, us.CreateUser(ctx, other))
	require.NoError(t, us.DeleteUser(ctx, other.ID))
	_, err := us.TokensValidAfter(ctx, other.ID)
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "TokensValidAfter(deleted user) = %v", err)

	ended, err := cs.DeleteClient(ctx, u.ClientID)
	require.NoError(t, err)
	assert.Equal(t, []string{u.ID}, ended, "DeleteClient names the users it removed")
	_, err = us.TokensValidAfter(ctx, u.ID)
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "TokensValidAfter(user of a deleted client) = %v", err)
	_, err = cs.DeleteClient(ctx, u.ClientID)
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "DeleteClient twice = %v", err)
	_, err = us.TokensValidAfter(ctx, "not-a-uuid")
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err))
}
