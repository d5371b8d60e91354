package session_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/auth/session"
)

const newPassword = "a brand new long password"

func changePassword(current, next string) string {
	b, _ := json.Marshal(map[string]string{"current_password": current, "new_password": next})
	return string(b)
}

// tokens logs email in with pw and returns the access and refresh tokens.
func (e *env) tokens(t *testing.T, email, pw string) (access, refresh string) {
	t.Helper()
	res := e.do(t, "POST", "/auth/login", "", login(email, pw))
	require.Equal(t, http.StatusOK, res.status, res.raw)
	return res.body["access_token"].(string), res.body["refresh_token"].(string)
}

func refreshBody(token string) string { return `{"refresh_token":"` + token + `"}` }

func TestPasswordChangeEndsEverySessionAndStartsOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t, session.Limits{})
	u := e.mustUser(t, "pat@example.com", tempwatch.RoleAdmin, "")
	e.mustUser(t, "other@example.com", tempwatch.RoleAdmin, "")

	access, refresh := e.tokens(t, "pat@example.com", password)
	// A second device, whose first access token is still live after a refresh.
	laptopOld, laptopRefresh := e.tokens(t, "pat@example.com", password)
	res := e.do(t, "POST", "/auth/refresh", "", refreshBody(laptopRefresh))
	require.Equal(t, http.StatusOK, res.status, res.raw)
	laptop, laptopRefresh := res.body["access_token"].(string), res.body["refresh_token"].(string)
	otherAccess, otherRefresh := e.tokens(t, "other@example.com", password)

	res = e.do(t, "POST", "/auth/password", access, changePassword(password, newPassword))
	require.Equal(t, http.StatusOK, res.status, res.raw)
	assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
	assert.Equal(t, "Bearer", res.body["token_type"])
	newAccess, newRefresh := res.body["access_token"].(string), res.body["refresh_token"].(string)

	for name, tok := range map[string]string{"this session": access, "other device": laptop, "other device, older": laptopOld} {
		assert.Equal(t, http.StatusUnauthorized, e.do(t, "GET", "/auth/me", tok, "").status, "old access token of %s", name)
	}
	for name, tok := range map[string]string{"this session": refresh, "other device": laptopRefresh} {
		assert.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/refresh", "", refreshBody(tok)).status, "old refresh token of %s", name)
	}
	res = e.do(t, "GET", "/auth/me", newAccess, "")
	require.Equal(t, http.StatusOK, res.status, "the new session works")
	assert.Equal(t, u.ID, res.body["id"])
	assert.Equal(t, http.StatusOK, e.do(t, "POST", "/auth/refresh", "", refreshBody(newRefresh)).status)

	assert.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/login", "", login("pat@example.com", password)).status, "old password")
	assert.Equal(t, http.StatusOK, e.do(t, "POST", "/auth/login", "", login("pat@example.com", newPassword)).status, "new password")
	stored, err := e.users.FindUserByID(context.Background(), u.ID)
	require.NoError(t, err)
	assert.NoError(t, auth.CheckPassword(stored.PasswordHash, newPassword), "stored as an argon2id hash of the new password")

	// Another user's sessions are untouched.
	assert.Equal(t, http.StatusOK, e.do(t, "GET", "/auth/me", otherAccess, "").status)
	assert.Equal(t, http.StatusOK, e.do(t, "POST", "/auth/refresh", "", refreshBody(otherRefresh)).status)
}

func TestPasswordChangeRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, session.Limits{})
	e.mustUser(t, "sam@example.com", tempwatch.RoleAdmin, "")
	access, refresh := e.tokens(t, "sam@example.com", password)

	tests := []struct {
		name, token, body string
		status            int
		field             string
	}{
		{"no token", "", changePassword(password, newPassword), 401, ""},
		{"wrong current password", access, changePassword("not the password!", newPassword), 400, "current_password"},
		{"overlong current password", access, changePassword(string(make([]byte, 4*auth.MaxPasswordLen+1)), newPassword), 400, "current_password"},
		{"weak new password", access, changePassword(password, "too short"), 400, "new_password"},
		{"overlong new password", access, changePassword(password, string(make([]rune, auth.MaxPasswordLen+1))), 400, "new_password"},
		{"new equals current", access, changePassword(password, password), 400, "new_password"},
		{"no current password", access, `{"new_password":"` + newPassword + `"}`, 400, "current_password"},
		{"no new password", access, `{"current_password":"` + password + `"}`, 400, "new_password"},
		{"unknown field", access, `{"current_password":"x","new_password":"y","password":"z"}`, 400, "password"},
		{"not json", access, `current_password=x`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(t, "POST", "/auth/password", tt.token, tt.body)
			require.Equal(t, tt.status, res.status, res.raw)
			assert.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
			if tt.field != "" {
				assert.Contains(t, res.body["errors"], tt.field, res.raw)
			}
		})
	}
	// Nothing changed: the password, the session, its tokens.
	assert.Equal(t, http.StatusOK, e.do(t, "GET", "/auth/me", access, "").status)
	assert.Equal(t, http.StatusOK, e.do(t, "POST", "/auth/refresh", "", refreshBody(refresh)).status)
	assert.Equal(t, http.StatusOK, e.do(t, "POST", "/auth/login", "", login("sam@example.com", password)).status)
}

// Wrong current passwords count against the session's own budget and the
// account's login limit; failed logins of others do not block the owner's
// password change.
func TestPasswordChangeSharesTheLoginLimit(t *testing.T) {
	t.Parallel()
	limits := session.Limits{PerAccount: 3, PerAddress: 100, PerDevice: 3, Window: time.Minute}
	assertBlocked := func(t *testing.T, res response) {
		t.Helper()
		require.Equal(t, http.StatusTooManyRequests, res.status, res.raw)
		assert.Equal(t, "too_many_requests", res.body["code"])
		secs, err := strconv.Atoi(res.header.Get("Retry-After"))
		require.NoError(t, err, "Retry-After = %q", res.header.Get("Retry-After"))
		assert.True(t, secs >= 1 && secs <= 60, "Retry-After = %d", secs)
	}

	// loggedIn is a fresh API with one user, logged in.
	loggedIn := func(t *testing.T, email string) (*env, string) {
		t.Helper()
		e := newEnv(t, limits)
		e.mustUser(t, email, tempwatch.RoleAdmin, "")
		access, _ := e.tokens(t, email, password)
		return e, access
	}

	t.Run("wrong current passwords block password changes and logins", func(t *testing.T) {
		t.Parallel()
		e, access := loggedIn(t, "kim@example.com")
		for i := range 3 {
			res := e.do(t, "POST", "/auth/password", access, changePassword("guess number "+strconv.Itoa(i), newPassword))
			require.Equal(t, http.StatusBadRequest, res.status, "guess %d: %s", i+1, res.raw)
		}
		// Blocked now, even with the right current password.
		assertBlocked(t, e.do(t, "POST", "/auth/password", access, changePassword(password, newPassword)))
		assertBlocked(t, e.do(t, "POST", "/auth/login", "", login("KIM@example.com", password)))
		// The block changed nothing.
		assert.Equal(t, http.StatusOK, e.do(t, "GET", "/auth/me", access, "").status)
	})
	t.Run("failed logins do not block the owner's password change", func(t *testing.T) {
		t.Parallel()
		e, access := loggedIn(t, "lee@example.com")
		for range 3 {
			require.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/login", "", login("lee@example.com", "wrong password!")).status)
		}
		assertBlocked(t, e.do(t, "POST", "/auth/login", "", login("lee@example.com", password)))
		res := e.do(t, "POST", "/auth/password", access, changePassword(password, newPassword))
		assert.Equal(t, http.StatusOK, res.status, res.raw)
	})
	t.Run("a right current password resets the count", func(t *testing.T) {
		t.Parallel()
		e, access := loggedIn(t, "max@example.com")
		for range 2 {
			require.Equal(t, http.StatusBadRequest, e.do(t, "POST", "/auth/password", access, changePassword("wrong password!", newPassword)).status)
		}
		// Right current password, refused new one: the failures are forgotten.
		require.Equal(t, http.StatusBadRequest, e.do(t, "POST", "/auth/password", access, changePassword(password, "short")).status)
		for range 2 {
			require.Equal(t, http.StatusBadRequest, e.do(t, "POST", "/auth/password", access, changePassword("wrong password!", newPassword)).status)
		}
		assert.Equal(t, http.StatusOK, e.do(t, "POST", "/auth/password", access, changePassword(password, newPassword)).status)
	})
}

// Two changes racing from two devices with the same current password: one
// wins, the other is refused (409 when both read the old hash, 400 when the
// loser read the new one, 401 when its session had already ended), and the
// stored password is the winner's.
func TestConcurrentPasswordChangesOneWinner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, session.Limits{})
	u := e.mustUser(t, "race@example.com", tempwatch.RoleAdmin, "")
	next := []string{"first new long password", "second new long password"}
	access := make([]string, len(next))
	for i := range next {
		access[i], _ = e.tokens(t, "race@example.com", password)
	}

	statuses := make([]int, len(next))
	var wg sync.WaitGroup
	for i := range next {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.do(t, "POST", "/auth/password", access[i], changePassword(password, next[i])).status
		}()
	}
	wg.Wait()
	winner := -1
	for i, s := range statuses {
		if s == http.StatusOK {
			require.Equal(t, -1, winner, "two changes succeeded: %v", statuses)
			winner = i
		} else {
			assert.Contains(t, []int{http.StatusConflict, http.StatusBadRequest, http.StatusUnauthorized}, s)
		}
	}
	require.NotEqual(t, -1, winner, "no change succeeded: %v", statuses)
	stored, err := e.users.FindUserByID(context.Background(), u.ID)
	require.NoError(t, err)
	assert.NoError(t, auth.CheckPassword(stored.PasswordHash, next[winner]))
}
