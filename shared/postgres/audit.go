package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The audit trail. The stores write each change's event in the change's own
// transaction (recordAudit), so a change without its record cannot commit;
// the table refuses UPDATE, DELETE and TRUNCATE (migration 003), so a record
// cannot be changed afterwards, not even by this code.

var _ tempwatch.AuditLog = (*AuditLog)(nil)

// AuditLog reads and appends to the audit trail in PostgreSQL.
type AuditLog struct{ db *pgxpool.Pool }

// NewAuditLog returns an AuditLog over db.
func NewAuditLog(db *pgxpool.Pool) *AuditLog { return &AuditLog{db: db} }

const auditColumns = `id, created_at, coalesce(actor_id::text, ''), actor_address, coalesce(client_id::text, ''),
	action, entity, entity_id, before, after`

func scanAuditEvent(row pgx.CollectableRow) (*tempwatch.AuditEvent, error) {
	var e tempwatch.AuditEvent
	err := row.Scan(&e.ID, &e.At, &e.ActorID, &e.ActorAddress, &e.ClientID, &e.Action, &e.Entity, &e.EntityID, &e.Before, &e.After)
	return &e, err
}

// queryRower is a pool or a transaction.
type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// recordAudit appends ev through db (the change's transaction, where there
// is one), its actor filled from ctx (tempwatch.AuditActor), and fills its
// id and time.
func recordAudit(ctx context.Context, db queryRower, ev *tempwatch.AuditEvent) error {
	tempwatch.AuditActor(ctx, ev)
	for _, id := range []string{ev.ActorID, ev.ClientID} {
		if id != "" && !tempwatch.IsUUID(id) {
			return fmt.Errorf("audit %s %s: %q is not an id", ev.Entity, ev.Action, id)
		}
	}
	err := db.QueryRow(ctx, `INSERT INTO audit_events
			(actor_id, actor_address, client_id, action, entity, entity_id, before, after)
		VALUES (nullif($1, '')::uuid, $2, nullif($3, '')::uuid, $4, $5, $6, $7, $8)
		RETURNING id, created_at`,
		ev.ActorID, ev.ActorAddress, ev.ClientID, ev.Action, ev.Entity, ev.EntityID, jsonOrNull(ev.Before), jsonOrNull(ev.After)).
		Scan(&ev.ID, &ev.At)
	if err != nil {
		return fmt.Errorf("audit %s %s: %w", ev.Entity, ev.Action, err)
	}
	return nil
}

// jsonOrNull passes an empty state as SQL NULL rather than invalid JSON.
func jsonOrNull(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// audited runs write in a transaction and records the event it returns in
// the same transaction: for the stores' one-statement changes.
func audited(ctx context.Context, db *pgxpool.Pool, write func(tx pgx.Tx) (*tempwatch.AuditEvent, error)) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		ev, err := write(tx)
		if err != nil {
			return err
		}
		return recordAudit(ctx, tx, ev)
	})
}

// RecordAudit appends ev on its own: for what no store transaction holds
// (logins, logouts).
func (a *AuditLog) RecordAudit(ctx context.Context, ev *tempwatch.AuditEvent) error {
	return recordAudit(ctx, a.db, ev)
}

// FindAuditEvents returns up to f.Page.Limit+1 events, newest first.
func (a *AuditLog) FindAuditEvents(ctx context.Context, f tempwatch.AuditFilter) ([]*tempwatch.AuditEvent, error) {
	q := newListQuery(`SELECT ` + auditColumns + ` FROM audit_events`)
	for _, id := range []string{f.ClientID, f.ActorID} {
		if id != "" && !tempwatch.IsUUID(id) {
			return []*tempwatch.AuditEvent{}, nil
		}
	}
	if f.ClientID != "" {
		q.and(`client_id = ` + q.arg(f.ClientID) + `::uuid`)
	}
	if f.ActorID != "" {
		q.and(`actor_id = ` + q.arg(f.ActorID) + `::uuid`)
	}
	if f.Entity != "" {
		q.and(`entity = ` + q.arg(f.Entity))
	}
	if f.EntityID != "" {
		q.and(`entity_id = ` + q.arg(f.EntityID))
	}
	if f.Action != "" {
		q.and(`action = ` + q.arg(f.Action))
	}
	if !f.From.IsZero() {
		q.and(`created_at >= ` + q.arg(f.From))
	}
	if !f.To.IsZero() {
		q.and(`created_at < ` + q.arg(f.To))
	}
	return collect(ctx, a.db, q, f.Page, scanAuditEvent, "audit events")
}

// FindAuditEventByID returns the event with id, or ENOTFOUND.
func (a *AuditLog) FindAuditEventByID(ctx context.Context, id string) (*tempwatch.AuditEvent, error) {
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.NotFound("Audit event")
	}
	rows, _ := a.db.Query(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE id = $1`, id)
	e, err := pgx.CollectExactlyOneRow(rows, scanAuditEvent)
	return e, translate(err, "Audit event")
}

// auditedUser is a user's state in the audit trail: its JSON (no hash) and
// whether this change set a new password.
type auditedUser struct {
	*tempwatch.User
	PasswordChanged bool `json:"password_changed,omitempty"`
}

// userEvent is action on the user before and/or after (nil for none).
func userEvent(action string, before, after *tempwatch.User) *tempwatch.AuditEvent {
	ev := &tempwatch.AuditEvent{Action: action, Entity: tempwatch.AuditUser}
	for _, u := range []*tempwatch.User{before, after} {
		if u != nil {
			ev.EntityID, ev.ClientID = u.ID, u.ClientID
		}
	}
	if before != nil {
		ev.Before = tempwatch.AuditState(auditedUser{User: before})
	}
	if after != nil {
		ev.After = tempwatch.AuditState(auditedUser{User: after})
	}
	return ev
}

// userUpdateEvent is the update of before into after: a role change, a
// move to another client (the event is after's client's), an admin's
// password reset (password_changed, never the hash).
func userUpdateEvent(before, after *tempwatch.User) *tempwatch.AuditEvent {
	ev := userEvent(tempwatch.ActionUpdate, before, after)
	ev.After = tempwatch.AuditState(auditedUser{User: after, PasswordChanged: before.PasswordHash != after.PasswordHash})
	return ev
}

// recordPasswordChange records user id's change of their own password.
func recordPasswordChange(ctx context.Context, tx pgx.Tx, id string) error {
	var clientID string
	if err := tx.QueryRow(ctx, `SELECT coalesce(client_id::text, '') FROM users WHERE id = $1`, id).Scan(&clientID); err != nil {
		return fmt.Errorf("audit password change: %w", err)
	}
	return recordAudit(ctx, tx, &tempwatch.AuditEvent{Action: tempwatch.ActionPasswordChange,
		Entity: tempwatch.AuditUser, EntityID: id, ClientID: clientID, After: tempwatch.AuditState(auditedUser{PasswordChanged: true})})
}

// entityEvent is action on entity id of clientID, with its states before
// and after (nil for none).
func entityEvent(action, entity, id, clientID string, before, after any) *tempwatch.AuditEvent {
	return &tempwatch.AuditEvent{Action: action, Entity: entity, EntityID: id, ClientID: clientID,
		Before: tempwatch.AuditState(before), After: tempwatch.AuditState(after)}
}

// sensorEvent is action on the sensor before and/or after (nil for none).
// A sensor's JSON holds no device key nor its hash.
func sensorEvent(action string, before, after *tempwatch.Sensor) *tempwatch.AuditEvent {
	s := cmp.Or(after, before)
	return entityEvent(action, tempwatch.AuditSensor, s.ID, s.ClientID, nilIfNone(before), nilIfNone(after))
}

// measurementEvent is action on the measurement before and/or after (nil
// for none): a correction's old and new value and measured_at.
func measurementEvent(action string, before, after *tempwatch.Reading) *tempwatch.AuditEvent {
	m := cmp.Or(after, before)
	return entityEvent(action, tempwatch.AuditMeasurement, strconv.FormatInt(m.ID, 10), m.ClientID, nilIfNone(before), nilIfNone(after))
}

// nilIfNone turns a nil pointer into an untyped nil, so it is recorded as no state.
func nilIfNone[T any](p *T) any {
	if p == nil {
		return nil
	}
	return p
}
