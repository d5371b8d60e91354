package session_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth/session"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Logins (right and wrong), logouts, password changes and the revoked
// session of a reused refresh token are in the audit trail, with the caller's
// address and the email a failed login tried, never a password.
func TestSessionsAreAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, session.Limits{PerAccount: 100, PerAddress: 100, Window: 60e9})
	u := e.mustUser(t, "ops@acme.test", tempwatch.RoleAdmin, "")

	require.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/login", "", login("ops@acme.test", "wrong password!")).status)
	require.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/login", "", login("nobody@acme.test", "guess password")).status)
	_, refresh := e.tokens(t, "ops@acme.test", password)
	res := e.do(t, "POST", "/auth/refresh", "", refreshBody(refresh))
	require.Equal(t, http.StatusOK, res.status, res.raw)
	require.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/refresh", "", refreshBody(refresh)).status, "reuse")
	access2, _ := e.tokens(t, "ops@acme.test", password)
	require.Equal(t, http.StatusOK, e.do(t, "POST", "/auth/password", access2, changePassword(password, newPassword)).status)
	access3, _ := e.tokens(t, "ops@acme.test", newPassword)
	require.Equal(t, http.StatusNoContent, e.do(t, "POST", "/auth/logout", access3, "").status)

	events, err := e.audit.FindAuditEvents(context.Background(), tempwatch.AuditFilter{Page: tempwatch.PageRequest{Limit: 100}})
	require.NoError(t, err)
	var actions []string
	for _, ev := range events {
		if ev.Action == tempwatch.ActionCreate {
			continue // the fixture's user
		}
		actions = append(actions, ev.Action)
		assert.Equal(t, "127.0.0.1", ev.ActorAddress, "%s: the caller's address", ev.Action)
		for _, raw := range [][]byte{ev.Before, ev.After} {
			for _, secret := range []string{password, newPassword, "wrong password!", "guess password", refresh} {
				assert.NotContains(t, string(raw), secret, "%s: no password or token", ev.Action)
			}
		}
		switch ev.Action {
		case tempwatch.ActionLoginFailed:
			assert.Empty(t, ev.ActorID, "a failed login has no actor")
		case tempwatch.ActionSessionRevoked:
			assert.Empty(t, ev.ActorID, "no user revoked the reused session")
			assert.Equal(t, u.ID, ev.EntityID)
		default:
			assert.Equal(t, u.ID, ev.ActorID, "%s: the user", ev.Action)
			assert.Equal(t, u.ID, ev.EntityID, "%s: of the user", ev.Action)
		}
	}
	assert.Equal(t, []string{"logout", "login", "password_change", "login", "session_revoked", "login", "login_failed", "login_failed"}, actions)
	failed, err := e.audit.FindAuditEvents(context.Background(), tempwatch.AuditFilter{Action: tempwatch.ActionLoginFailed,
		Page: tempwatch.PageRequest{Limit: 100}})
	require.NoError(t, err)
	require.Len(t, failed, 2) // newest first: the unknown email, then the known one
	assert.JSONEq(t, `{"email":"nobody@acme.test"}`, string(failed[0].After))
	assert.Empty(t, failed[0].EntityID, "an unknown email is no user's")
	assert.JSONEq(t, `{"email":"ops@acme.test"}`, string(failed[1].After))
	assert.Equal(t, u.ID, failed[1].EntityID, "a wrong password is recorded against its account")
}
