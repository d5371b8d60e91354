package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
)

func TestRefreshTokenStates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustDB(t)
	store := postgres.NewRefreshTokenStore(db)
	us := postgres.NewUserStore(db)
	newUser := func(email string) *tempwatch.User {
		u := &tempwatch.User{Email: email, Role: tempwatch.RoleAdmin, PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$a2V5"}
		require.NoError(t, us.CreateUser(ctx, u))
		return u
	}
	alice, bob := newUser("alice@example.com"), newUser("bob@example.com")
	issue := func(userID, family string, ttl time.Duration) []byte {
		_, h := tempwatch.NewRefreshSecret()
		cutoff, err := us.TokensValidAfter(ctx, userID)
		require.NoError(t, err)
		require.NoError(t, store.CreateRefreshToken(ctx, tempwatch.RefreshToken{FamilyID: family, UserID: userID, Hash: h, ExpiresAt: time.Now().Add(ttl), ValidAfter: cutoff}))
		return h
	}
	rotate := func(h []byte) error {
		_, nh := tempwatch.NewRefreshSecret()
		_, err := store.RotateRefreshToken(ctx, h, &tempwatch.RefreshToken{Hash: nh, ExpiresAt: time.Now().Add(time.Hour)})
		return err
	}

	_, unknown := tempwatch.NewRefreshSecret()
	assert.ErrorIs(t, rotate(unknown), tempwatch.ErrRefreshInvalid, "unknown token")
	assert.ErrorIs(t, rotate(issue(alice.ID, auth.NewID(), -time.Second)), tempwatch.ErrRefreshInvalid, "expired token")

	fam := auth.NewID()
	live := issue(alice.ID, fam, time.Hour)
	require.NoError(t, store.RevokeRefreshFamily(ctx, bob.ID, fam), "another user's family id changes nothing")
	require.NoError(t, rotate(live))
	assert.ErrorIs(t, rotate(live), tempwatch.ErrRefreshReused)

	fam2 := auth.NewID()
	revoked := issue(alice.ID, fam2, time.Hour)
	require.NoError(t, store.RevokeRefreshFamily(ctx, alice.ID, fam2))
	assert.ErrorIs(t, rotate(revoked), tempwatch.ErrRefreshInvalid, "revoked family")

	// A new password ends every session of that user, and only theirs.
	a, b := issue(alice.ID, auth.NewID(), time.Hour), issue(bob.ID, auth.NewID(), time.Hour)
	alice.PasswordHash = "$argon2id$v=19$m=1,t=1,p=1$c2FsdDI$a2V5Mg"
	require.NoError(t, us.UpdateUser(ctx, alice))
	assert.ErrorIs(t, rotate(a), tempwatch.ErrRefreshInvalid, "password change revokes")
	assert.NoError(t, rotate(b))

	// A renamed user keeps their sessions.
	c := issue(bob.ID, auth.NewID(), time.Hour)
	bob.Name = "Bob"
	require.NoError(t, us.UpdateUser(ctx, bob))
	assert.NoError(t, rotate(c))

	// Deleting a user deletes their tokens.
	d := issue(bob.ID, auth.NewID(), time.Hour)
	require.NoError(t, us.DeleteUser(ctx, bob.ID))
	assert.ErrorIs(t, rotate(d), tempwatch.ErrRefreshInvalid)
}

// A session is live while its family has tokens and none is revoked: a
// rotation keeps it live, a logout, a reuse or its user's deletion ends it,
// and an unknown or malformed id is no session.
func TestSessionStates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MustDB(t)
	store := postgres.NewRefreshTokenStore(db)
	us := postgres.NewUserStore(db)
	states := postgres.NewSessionStates(db)
	u := &tempwatch.User{Email: "s@example.com", Role: tempwatch.RoleViewer, ClientID: pgtest.MustClient(t, db, "acme", ""),
		PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$a2V5"}
	require.NoError(t, us.CreateUser(ctx, u))
	open := func() (family string, hash []byte) {
		family = auth.NewID()
		_, hash = tempwatch.NewRefreshSecret()
		require.NoError(t, store.CreateRefreshToken(ctx, tempwatch.RefreshToken{FamilyID: family, UserID: u.ID, Hash: hash,
			ExpiresAt: time.Now().Add(time.Hour), ValidAfter: u.TokensValidAfter}))
		return family, hash
	}
	rotate := func(h []byte) ([]byte, error) {
		_, nh := tempwatch.NewRefreshSecret()
		_, err := store.RotateRefreshToken(ctx, h, &tempwatch.RefreshToken{Hash: nh, ExpiresAt: time.Now().Add(time.Hour)})
		return nh, err
	}
	live := func(family string) bool {
		at, err := states.TokensValidAfter(ctx, family)
		if tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND {
			return false
		}
		require.NoError(t, err)
		assert.Equal(t, time.UnixMicro(0), at)
		return true
	}

	loggedOut, _ := open()
	rotated, h := open()
	_, err := rotate(h)
	require.NoError(t, err)
	reused, h := open()
	_, err = rotate(h)
	require.NoError(t, err)
	assert.True(t, live(loggedOut))
	assert.True(t, live(rotated), "a rotation keeps the session")
	assert.True(t, live(reused))

	require.NoError(t, store.RevokeRefreshFamily(ctx, u.ID, loggedOut))
	_, err = rotate(h)
	require.ErrorIs(t, err, tempwatch.ErrRefreshReused)
	assert.False(t, live(loggedOut), "logged out")
	assert.False(t, live(reused), "a reused token ends the session")
	assert.True(t, live(rotated))
	assert.False(t, live(auth.NewID()), "no such session")
	assert.False(t, live("not-a-uuid"))
	assert.False(t, live(""))

	require.NoError(t, us.DeleteUser(ctx, u.ID))
	assert.False(t, live(rotated), "the user's deletion ends their sessions")
}
