package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var (
	_ tempwatch.WebhookService = (*WebhookStore)(nil)
	_ tempwatch.DeliveryQueue  = (*WebhookStore)(nil)
)

// WebhookStore keeps webhooks, their deliveries and attempts in PostgreSQL
// (migration 006), and is the delivery worker's queue. Deliveries are made
// by a trigger on alarm_events in the writer's transaction; this store only
// reads, takes and settles them.
type WebhookStore struct{ db *pgxpool.Pool }

// NewWebhookStore returns a WebhookStore over db.
func NewWebhookStore(db *pgxpool.Pool) *WebhookStore { return &WebhookStore{db: db} }

const webhookColumns = `id, client_id, url, events, enabled, secret, created_at, updated_at`

func scanWebhook(row pgx.CollectableRow) (*tempwatch.Webhook, error) {
	var w tempwatch.Webhook
	err := row.Scan(&w.ID, &w.ClientID, &w.URL, &w.Events, &w.Enabled, &w.Secret, &w.CreatedAt, &w.UpdatedAt)
	return &w, err
}

// CreateWebhook inserts w, at most tempwatch.MaxWebhooksPerClient per
// client: the client's row is locked (FOR NO KEY UPDATE, which no foreign
// key check waits for) so two creates cannot both pass the count.
func (s *WebhookStore) CreateWebhook(ctx context.Context, w *tempwatch.Webhook) error {
	if err := w.Validate(); err != nil {
		return err
	}
	return audited(ctx, s.db, func(tx pgx.Tx) (*tempwatch.AuditEvent, error) {
		var n int
		err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM webhooks WHERE client_id = c.id)
			FROM clients c WHERE c.id = $1 FOR NO KEY UPDATE OF c`, w.ClientID).Scan(&n)
		if err != nil {
			return nil, translate(err, "Client")
		}
		if n >= tempwatch.MaxWebhooksPerClient {
			return nil, tempwatch.Errorf(tempwatch.ECONFLICT, "A client has at most %d webhooks: delete one first.", tempwatch.MaxWebhooksPerClient)
		}
		rows, _ := tx.Query(ctx, `INSERT INTO webhooks (client_id, url, events, enabled, secret)
			VALUES ($1, $2, $3, $4, $5) RETURNING `+webhookColumns, w.ClientID, w.URL, w.Events, w.Enabled, w.Secret)
		created, err := pgx.CollectExactlyOneRow(rows, scanWebhook)
		if err != nil {
			return nil, translate(err, "Webhook")
		}
		*w = *created
		return entityEvent(tempwatch.ActionCreate, tempwatch.AuditWebhook, w.ID, w.ClientID, nil, w), nil
	})
}

// FindWebhookByID returns the webhook with id, or ENOTFOUND.
func (s *WebhookStore) FindWebhookByID(ctx context.Context, id string) (*tempwatch.Webhook, error) {
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.NotFound("Webhook")
	}
	rows, _ := s.db.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id)
	w, err := pgx.CollectExactlyOneRow(rows, scanWebhook)
	return w, translate(err, "Webhook")
}

// FindWebhooks returns up to f.Page.Limit+1 webhooks, newest first.
func (s *WebhookStore) FindWebhooks(ctx context.Context, f tempwatch.WebhookFilter) ([]*tempwatch.Webhook, error) {
	q := newListQuery(`SELECT ` + webhookColumns + ` FROM webhooks`)
	if f.ClientID != "" {
		if !tempwatch.IsUUID(f.ClientID) {
			return []*tempwatch.Webhook{}, nil
		}
		q.and(`client_id = ` + q.arg(f.ClientID) + `::uuid`)
	}
	return collect(ctx, s.db, q, f.Page, scanWebhook, "webhooks")
}

// UpdateWebhook applies the fields upd sets and returns the stored webhook.
func (s *WebhookStore) UpdateWebhook(ctx context.Context, id string, upd tempwatch.WebhookUpdate) (*tempwatch.Webhook, error) {
	if err := upd.Validate(); err != nil {
		return nil, err
	}
	var events []string
	if upd.Events != nil {
		events = *upd.Events
	}
	return s.change(ctx, id, tempwatch.ActionUpdate, `UPDATE webhooks SET
			url = coalesce($2, url),
			events = coalesce($3, events),
			enabled = coalesce($4, enabled),
			updated_at = now()
		WHERE id = $1 RETURNING `+webhookColumns, upd.URL, events, upd.Enabled)
}

// RotateWebhookSecret replaces the webhook's secret.
func (s *WebhookStore) RotateWebhookSecret(ctx context.Context, id, secret string) (*tempwatch.Webhook, error) {
	return s.change(ctx, id, tempwatch.ActionKeyRotation,
		`UPDATE webhooks SET secret = $2, updated_at = now() WHERE id = $1 RETURNING `+webhookColumns, secret)
}

// change runs update (its $1 the webhook's id) with its audit event.
func (s *WebhookStore) change(ctx context.Context, id, action, update string, args ...any) (*tempwatch.Webhook, error) {
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.NotFound("Webhook")
	}
	var w *tempwatch.Webhook
	err := audited(ctx, s.db, func(tx pgx.Tx) (*tempwatch.AuditEvent, error) {
		rows, _ := tx.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1 FOR NO KEY UPDATE`, id)
		before, err := pgx.CollectExactlyOneRow(rows, scanWebhook)
		if err != nil {
			return nil, translate(err, "Webhook")
		}
		rows, _ = tx.Query(ctx, update, append([]any{id}, args...)...)
		if w, err = pgx.CollectExactlyOneRow(rows, scanWebhook); err != nil {
			return nil, translate(err, "Webhook")
		}
		if !before.Enabled && w.Enabled {
			if err := failStaleDeliveries(ctx, tx, id); err != nil {
				return nil, err
			}
		}
		return entityEvent(action, tempwatch.AuditWebhook, id, w.ClientID, before, w), nil
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// DisabledError is the last error of a delivery failed because its
// webhook was disabled for longer than its retry window.
const DisabledError = "webhook disabled"

// failStaleDeliveries fails the pending deliveries of a webhook being
// re-enabled that are older than the retry window
// (tempwatch.DeliveryRetryWindow): they would have failed had the webhook
// stayed enabled, and a receiver should not get weeks-old events. Younger
// ones are due at once and retried as usual.
func failStaleDeliveries(ctx context.Context, tx pgx.Tx, webhookID string) error {
	_, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET state = 'failed', last_error = $2
		WHERE webhook_id = $1 AND state = 'pending' AND created_at <= now() - $3::interval`,
		webhookID, DisabledError, tempwatch.DeliveryRetryWindow)
	if err != nil {
		return fmt.Errorf("fail stale webhook deliveries: %w", err)
	}
	return nil
}

// DeleteWebhook removes the webhook and, by cascade, its deliveries.
func (s *WebhookStore) DeleteWebhook(ctx context.Context, id string) error {
	if !tempwatch.IsUUID(id) {
		return tempwatch.NotFound("Webhook")
	}
	return audited(ctx, s.db, func(tx pgx.Tx) (*tempwatch.AuditEvent, error) {
		rows, _ := tx.Query(ctx, `DELETE FROM webhooks WHERE id = $1 RETURNING `+webhookColumns, id)
		before, err := pgx.CollectExactlyOneRow(rows, scanWebhook)
		if err != nil {
			return nil, translate(err, "Webhook")
		}
		return entityEvent(tempwatch.ActionDelete, tempwatch.AuditWebhook, id, before.ClientID, before, nil), nil
	})
}

const deliveryColumns = `d.id, d.webhook_id, d.event_id::text, e.type, d.state, d.attempts,
	CASE WHEN d.state = 'pending' THEN d.next_attempt_at END, d.last_status, d.last_error, d.created_at, d.delivered_at`

func scanDelivery(row pgx.CollectableRow) (*tempwatch.WebhookDelivery, error) {
	var d tempwatch.WebhookDelivery
	err := row.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &d.State, &d.Attempts, &d.NextAttemptAt,
		&d.LastStatus, &d.LastError, &d.CreatedAt, &d.DeliveredAt)
	d.AttemptLog = []tempwatch.WebhookAttempt{}
	return &d, err
}

// FindWebhookDeliveries returns up to f.Page.Limit+1 deliveries of a
// webhook, newest first, each with its attempts (one more query for the
// page's attempts).
func (s *WebhookStore) FindWebhookDeliveries(ctx context.Context, f tempwatch.DeliveryFilter) ([]*tempwatch.WebhookDelivery, error) {
	if !tempwatch.IsUUID(f.WebhookID) {
		return []*tempwatch.WebhookDelivery{}, nil
	}
	// The list's keyset condition and order name created_at and id: the
	// deliveries', from the inner query, which PostgreSQL flattens into an
	// index scan of webhook_deliveries_page.
	q := &listQuery{}
	inner := `SELECT ` + deliveryColumns + ` FROM webhook_deliveries d JOIN alarm_events e ON e.id = d.event_id
		WHERE d.webhook_id = ` + q.arg(f.WebhookID) + `::uuid`
	if f.State != "" {
		inner += ` AND d.state = ` + q.arg(f.State)
	}
	q.sql = `SELECT * FROM (` + inner + `) page WHERE true`
	ds, err := collect(ctx, s.db, q, f.Page, scanDelivery, "webhook deliveries")
	if err != nil || len(ds) == 0 {
		return ds, err
	}
	ids := make([]string, len(ds))
	byID := make(map[string]*tempwatch.WebhookDelivery, len(ds))
	for i, d := range ds {
		ids[i], byID[d.ID] = d.ID, d
	}
	rows, err := s.db.Query(ctx, `SELECT delivery_id, started_at, duration_ms, status, error
		FROM webhook_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY delivery_id, started_at, id`, ids)
	if err != nil {
		return nil, fmt.Errorf("find webhook attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a tempwatch.WebhookAttempt
		if err := rows.Scan(&id, &a.StartedAt, &a.DurationMS, &a.Status, &a.Error); err != nil {
			return nil, fmt.Errorf("find webhook attempts: %w", err)
		}
		byID[id].AttemptLog = append(byID[id].AttemptLog, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find webhook attempts: %w", err)
	}
	return ds, nil
}

// TakeDueDeliveries takes up to t.Limit due pending deliveries, at most
// one per webhook, and moves their next_attempt_at to t.Now+t.Lease, in one
// short transaction: FOR UPDATE SKIP LOCKED lets workers running at once
// take different rows, and the lease keeps them from taking each other's
// after the commit, while no transaction stays open during the sends.
//
// It starts from the enabled webhooks (those not skipped), and takes each
// one's oldest due delivery (one probe of webhook_deliveries_due_per_webhook
// each), so a disabled webhook's pending deliveries are never read and one
// webhook's backlog fills at most one place. The clients take turns: every
// client's oldest head first, then every client's second, each turn oldest
// first, a client's turns counted on from t.Served; so a client with ten
// webhooks gets no more of a small take than a client with one, and the
// client served least in the run comes first.
func (s *WebhookStore) TakeDueDeliveries(ctx context.Context, t tempwatch.DeliveryTake) ([]*tempwatch.DueDelivery, error) {
	skip := t.SkipWebhooks
	if skip == nil {
		skip = []string{}
	}
	servedClients, served := []string{}, []int{}
	for c, n := range t.Served {
		servedClients, served = append(servedClients, c), append(served, n)
	}
	rows, _ := s.db.Query(ctx, `WITH heads AS (
			SELECT h.id, h.next_attempt_at, coalesce(s.served, 0)
					+ row_number() OVER (PARTITION BY w.client_id ORDER BY h.next_attempt_at, h.id) AS turn
			FROM webhooks w CROSS JOIN LATERAL (
				SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
				WHERE d.webhook_id = w.id AND d.state = 'pending' AND d.next_attempt_at <= $1
				ORDER BY d.next_attempt_at
				LIMIT 1) h
			LEFT JOIN unnest($5::uuid[], $6::int[]) AS s (client_id, served) ON s.client_id = w.client_id
			WHERE w.enabled AND w.id <> ALL($4::uuid[])),
		due AS (
			SELECT d.id FROM webhook_deliveries d JOIN heads h ON h.id = d.id
			WHERE d.state = 'pending' AND d.next_attempt_at <= $1
			ORDER BY h.turn, h.next_attempt_at, h.id
			LIMIT $2
			FOR UPDATE OF d SKIP LOCKED),
		taken AS (
			UPDATE webhook_deliveries d SET next_attempt_at = $1::timestamptz + $3::interval
			FROM due WHERE d.id = due.id
			RETURNING d.id, d.webhook_id, d.event_id, d.attempts, d.created_at)
		SELECT t.id, t.webhook_id, w.client_id, w.url, w.secret, t.attempts, t.created_at, e.id::text, e.type, e.created_at, e.body
		FROM taken t JOIN webhooks w ON w.id = t.webhook_id JOIN alarm_events e ON e.id = t.event_id`,
		t.Now, t.Limit, t.Lease, skip, servedClients, served)
	due, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*tempwatch.DueDelivery, error) {
		var d tempwatch.DueDelivery
		err := row.Scan(&d.ID, &d.WebhookID, &d.ClientID, &d.URL, &d.Secret, &d.Attempts, &d.CreatedAt,
			&d.Event.ID, &d.Event.Type, &d.Event.CreatedAt, &d.Event.Alarm)
		return &d, err
	})
	if err != nil {
		return nil, fmt.Errorf("take due deliveries: %w", err)
	}
	return due, nil
}

// RecordDeliveryAttempt stores the attempt and settles the delivery: the
// delivery only when no other worker has attempted it since it was taken
// (its attempts still AttemptsBefore), the attempt in any case, as it was
// made. A delivery deleted meanwhile (with its webhook) is no error: there
// is nothing left to record it in. The delivery's row is locked first, so
// a delete waits for the record rather than failing its insert.
func (s *WebhookStore) RecordDeliveryAttempt(ctx context.Context, o tempwatch.DeliveryOutcome) error {
	var status *int
	if o.Status != 0 {
		status = &o.Status
	}
	var next *time.Time
	if o.State == tempwatch.DeliveryPending {
		next = &o.NextAttemptAt
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `SELECT FROM webhook_deliveries WHERE id = $1 FOR NO KEY UPDATE`, o.DeliveryID)
		if err != nil {
			return fmt.Errorf("lock webhook delivery: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // deleted with its webhook during the attempt
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, started_at, duration_ms, status, error)
			VALUES ($1, $2, $3, $4, $5)`, o.DeliveryID, o.StartedAt, o.Duration.Milliseconds(), status, o.Error); err != nil {
			return fmt.Errorf("insert webhook attempt: %w", err)
		}
		_, err = tx.Exec(ctx, `UPDATE webhook_deliveries SET
				attempts = attempts + 1,
				state = $3,
				next_attempt_at = coalesce($4, next_attempt_at),
				last_status = $5,
				last_error = $6,
				delivered_at = CASE WHEN $3 = 'delivered' THEN $7::timestamptz END
			WHERE id = $1 AND attempts = $2 AND state = 'pending'`,
			o.DeliveryID, o.AttemptsBefore, o.State, next, status, o.Error, o.StartedAt.Add(o.Duration))
		if err != nil {
			return fmt.Errorf("settle webhook delivery: %w", err)
		}
		return nil
	})
}
