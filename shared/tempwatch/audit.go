package tempwatch

import (
	"context"
	"encoding/json"
	"time"
)

// AuditEvent is one entry of the append-only audit trail: who (ActorID,
// ActorAddress) did what (Action on Entity EntityID of client ClientID),
// when (At), and the entity before and after. Before and After never hold
// a password, a password hash, a device key or its hash.
type AuditEvent struct {
	ID           string    `json:"id"`
	At           time.Time `json:"at"`
	ActorID      string    `json:"actor_id,omitempty"` // "" when the caller is unknown (a failed login)
	ActorAddress string    `json:"actor_address,omitempty"`
	// ClientID is the tenant the entity belongs to: the one whose client
	// admins may read the event. "" for admins' accounts and unknown emails.
	ClientID string          `json:"client_id,omitempty"`
	Action   string          `json:"action"`
	Entity   string          `json:"entity"`
	EntityID string          `json:"entity_id,omitempty"`
	Before   json.RawMessage `json:"before,omitempty"`
	After    json.RawMessage `json:"after,omitempty"`
}

// Audited entities.
const (
	AuditUser        = "user"
	AuditClient      = "client"
	AuditSensor      = "sensor"
	AuditMeasurement = "measurement"
	AuditAlarm       = "alarm"
)

// Audited actions.
const (
	ActionCreate         = "create"
	ActionUpdate         = "update" // role changes and admins' password resets too: see before and after
	ActionDelete         = "delete"
	ActionLogin          = "login"
	ActionLoginFailed    = "login_failed" // after: the email tried, never the password
	ActionLogout         = "logout"
	ActionSessionRevoked = "session_revoked" // a reused refresh token ended its session
	ActionPasswordChange = "password_change" // the user's own, POST /auth/password
	ActionKeyRotation    = "key_rotation"    // a sensor's device key replaced
	ActionAcknowledge    = "acknowledge"     // an alarm acknowledged, with its comment
)

// AuditEntities and AuditActions list the values a filter may name.
var (
	AuditEntities = []string{AuditUser, AuditClient, AuditSensor, AuditMeasurement, AuditAlarm}
	AuditActions  = []string{ActionCreate, ActionUpdate, ActionDelete, ActionLogin, ActionLoginFailed,
		ActionLogout, ActionSessionRevoked, ActionPasswordChange, ActionKeyRotation, ActionAcknowledge}
)

// AuditFilter selects audit events for a list; empty fields select all.
type AuditFilter struct {
	ClientID string // "" for every client (admins only)
	ActorID  string
	Entity   string
	EntityID string
	Action   string
	From, To time.Time // From inclusive, To exclusive; zero for no bound
	Page     PageRequest
}

// AuditLog is the audit trail. It has no method that changes or removes an
// event.
type AuditLog interface {
	// RecordAudit appends ev, its actor taken from ctx where ev names none
	// (AuditActor), and fills its id and time.
	RecordAudit(ctx context.Context, ev *AuditEvent) error
	// FindAuditEvents returns up to f.Page.Limit+1 events, newest first.
	FindAuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
	FindAuditEventByID(ctx context.Context, id string) (*AuditEvent, error)
}

// AuditState returns v as an audit event's before or after: its JSON form,
// which for the domain types leaves out every secret (json:"-"). nil stays
// nil.
func AuditState(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

type addressKey struct{}

// WithRemoteAddress returns ctx carrying the address the request came from,
// for the audit trail.
func WithRemoteAddress(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, addressKey{}, addr)
}

// RemoteAddress returns the address carried by ctx, "" if none.
func RemoteAddress(ctx context.Context) string {
	a, _ := ctx.Value(addressKey{}).(string)
	return a
}

// AuditActor fills ev's actor from ctx: the authenticated caller, where ev
// names no actor, and the request's address, where ev names none.
func AuditActor(ctx context.Context, ev *AuditEvent) {
	if p, ok := PrincipalFrom(ctx); ok && ev.ActorID == "" {
		ev.ActorID = p.UserID
	}
	if ev.ActorAddress == "" {
		ev.ActorAddress = RemoteAddress(ctx)
	}
}
