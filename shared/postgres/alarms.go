package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.AlarmService = (*AlarmStore)(nil)

// AlarmStore reads alarms and records their acknowledgements in
// PostgreSQL. Pending excursions (shorter than their sensor's delay) are
// not alarms yet: it never shows them.
type AlarmStore struct{ db *pgxpool.Pool }

// NewAlarmStore returns an AlarmStore over db.
func NewAlarmStore(db *pgxpool.Pool) *AlarmStore { return &AlarmStore{db: db} }

// alarmColumns are an alarms row as scanAlarm reads it: every statement
// that returns alarms (reads, and the RETURNING of writes) selects these.
// A withdrawn alarm may never have opened; it shows its start then. A
// silence lasts until now while it is open.
const alarmColumns = `id, sensor_id, client_id, kind, state, started_at, coalesce(opened_at, started_at), last_at,
	cleared_at, peak, extract(epoch FROM coalesce(cleared_at,
		CASE WHEN kind = 'silent' THEN greatest(now(), last_at) ELSE last_at END) - started_at)::float8,
	coalesce(acknowledged_by::text, ''), acknowledged_at, ack_comment, created_at, updated_at`

// scanAlarm reads a row of alarmColumns.
func scanAlarm(row pgx.CollectableRow) (*tempwatch.Alarm, error) {
	var a tempwatch.Alarm
	var ackBy, ackComment string
	var ackAt *time.Time
	err := row.Scan(&a.ID, &a.SensorID, &a.ClientID, &a.Kind, &a.State, &a.StartedAt, &a.OpenedAt, &a.LastAt,
		&a.ClearedAt, &a.Peak, &a.DurationSeconds, &ackBy, &ackAt, &ackComment, &a.CreatedAt, &a.UpdatedAt)
	if ackAt != nil {
		a.Acknowledgement = &tempwatch.Acknowledgement{UserID: ackBy, At: *ackAt, Comment: ackComment}
	}
	return &a, err
}

// recordAlarmEvent appends the outbox row of typ (tempwatch.EventAlarm...)
// for a, its body the alarm as the API shows it, in tx: the transaction
// that changed a, so the event commits with the change or not at all.
func recordAlarmEvent(ctx context.Context, tx pgx.Tx, typ string, a *tempwatch.Alarm) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("alarm event %s: %w", typ, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO alarm_events (alarm_id, client_id, type, body) VALUES ($1, $2, $3, $4)`,
		a.ID, a.ClientID, typ, string(body)); err != nil {
		return fmt.Errorf("alarm event %s: %w", typ, err)
	}
	return nil
}

// FindAlarms returns up to f.Page.Limit+1 alarms, newest start first.
func (s *AlarmStore) FindAlarms(ctx context.Context, f tempwatch.AlarmFilter) ([]*tempwatch.Alarm, error) {
	for _, id := range []string{f.ClientID, f.SensorID} {
		if id != "" && !tempwatch.IsUUID(id) {
			return []*tempwatch.Alarm{}, nil
		}
	}
	q := newListQuery(`SELECT ` + alarmColumns + ` FROM alarms`)
	q.timeColumn = "started_at"
	q.and(`state <> 'pending'`)
	if f.ClientID != "" {
		q.and(`client_id = ` + q.arg(f.ClientID) + `::uuid`)
	}
	if f.SensorID != "" {
		q.and(`sensor_id = ` + q.arg(f.SensorID) + `::uuid`)
	}
	if f.Kind != "" {
		q.and(`kind = ` + q.arg(f.Kind))
	}
	if f.State != "" {
		q.and(`state = ` + q.arg(f.State))
	}
	if !f.From.IsZero() {
		from := q.arg(f.From)
		q.and(`(state = 'open' OR started_at >= ` + from + ` OR cleared_at > ` + from + ` OR (cleared_at IS NULL AND last_at >= ` + from + `))`)
	}
	if !f.To.IsZero() {
		q.and(`started_at < ` + q.arg(f.To))
	}
	return collect(ctx, s.db, q, f.Page, scanAlarm, "alarms")
}

// FindAlarmByID returns the alarm with id; a pending one, like a missing
// one, is ENOTFOUND.
func (s *AlarmStore) FindAlarmByID(ctx context.Context, id string) (*tempwatch.Alarm, error) {
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.NotFound("Alarm")
	}
	rows, _ := s.db.Query(ctx, `SELECT `+alarmColumns+` FROM alarms WHERE id = $1 AND state <> 'pending'`, id)
	a, err := pgx.CollectExactlyOneRow(rows, scanAlarm)
	return a, translate(err, "Alarm")
}

// AcknowledgeAlarm records userID's acknowledgement of alarm id with
// comment, its audit event and its alarm.acknowledged event, in one
// transaction. The alarm's row is the only row it locks, first, so of two
// acknowledgements at once one waits and then finds the alarm acknowledged
// (ECONFLICT), and an evaluation that changes the alarm meanwhile is
// ordered before or after it, never lost. FOR NO KEY UPDATE, not FOR
// UPDATE: the key never changes, and the outbox row's foreign key needs
// only a KEY SHARE lock on it.
func (s *AlarmStore) AcknowledgeAlarm(ctx context.Context, id, userID, comment string) (*tempwatch.Alarm, error) {
	if err := tempwatch.ValidateAckComment(comment); err != nil {
		return nil, err
	}
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.NotFound("Alarm")
	}
	if !tempwatch.IsUUID(userID) {
		return nil, fmt.Errorf("acknowledge alarm %s: user %q is not an id", id, userID)
	}
	var out *tempwatch.Alarm
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+alarmColumns+` FROM alarms WHERE id = $1 AND state <> 'pending' FOR NO KEY UPDATE`, id)
		before, err := pgx.CollectExactlyOneRow(rows, scanAlarm)
		if err != nil {
			return translate(err, "Alarm")
		}
		if before.Acknowledgement != nil {
			return tempwatch.Errorf(tempwatch.ECONFLICT, "The alarm is already acknowledged.")
		}
		rows, _ = tx.Query(ctx, `UPDATE alarms SET acknowledged_by = $2, acknowledged_at = now(), ack_comment = $3, updated_at = now()
			WHERE id = $1 RETURNING `+alarmColumns, id, userID, comment)
		if out, err = pgx.CollectExactlyOneRow(rows, scanAlarm); err != nil {
			return translate(err, "Alarm")
		}
		ev := entityEvent(tempwatch.ActionAcknowledge, tempwatch.AuditAlarm, id, out.ClientID, before, out)
		if err := recordAudit(ctx, tx, ev); err != nil {
			return err
		}
		return recordAlarmEvent(ctx, tx, tempwatch.EventAlarmAcknowledged, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
