package session

import (
	"context"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The audit events of /auth. They have no store transaction to join (the
// refresh tokens are written on their own), so they are written just before
// the change they record, and a failure to write one refuses a login or a
// logout; a failed login is recorded as well as can be (a failure to is
// logged) and answered as any failed login.

// sessionState is an audit event's after of a session event: the email
// tried by a failed login (never the password), the session (refresh-token
// family) that started or ended.
type sessionState struct {
	Client    string `json:"client,omitempty"`
	Email     string `json:"email,omitempty"`
	SessionID string `json:"session_id,omitempty"`
}

// sessionEvent is action on user userID of clientID by actorID ("": the
// caller of ctx) in session sessionID.
func sessionEvent(action, actorID, userID, clientID, sessionID string) *tempwatch.AuditEvent {
	ev := &tempwatch.AuditEvent{Action: action, ActorID: actorID, Entity: tempwatch.AuditUser, EntityID: userID, ClientID: clientID}
	if sessionID != "" {
		ev.After = tempwatch.AuditState(sessionState{SessionID: sessionID})
	}
	return ev
}

// recordFailedLogin records the refused login req, of user u when it named
// an account (u nil: no such account, which only admins see).
func (h *Handler) recordFailedLogin(ctx context.Context, req loginRequest, u *tempwatch.User) {
	ev := &tempwatch.AuditEvent{Action: tempwatch.ActionLoginFailed, Entity: tempwatch.AuditUser,
		After: tempwatch.AuditState(sessionState{Client: req.Client, Email: req.Email})}
	if u != nil {
		ev.EntityID, ev.ClientID = u.ID, u.ClientID
	}
	if err := h.Audit.RecordAudit(ctx, ev); err != nil {
		h.Log.ErrorContext(ctx, "cannot record failed login", "error", err)
	}
}

// recordReuse records the end of old's session for the reuse of a refresh
// token (someone held a copy); no user acted.
func (h *Handler) recordReuse(ctx context.Context, old tempwatch.RefreshToken) {
	ev := sessionEvent(tempwatch.ActionSessionRevoked, "", old.UserID, "", old.FamilyID)
	if u, err := h.Users.FindUserByID(ctx, old.UserID); err == nil {
		ev.ClientID = u.ClientID
	}
	if err := h.Audit.RecordAudit(ctx, ev); err != nil {
		h.Log.ErrorContext(ctx, "cannot record revoked session", "error", err)
	}
}
