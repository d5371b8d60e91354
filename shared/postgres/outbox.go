package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// ArchiveOutbox keeps the raw payloads and dead letters MongoDB could not
// take in the archive_outbox table, one row per failed archive call, the
// call's items as JSON in body. Rows are drained with FOR UPDATE SKIP LOCKED,
// so instances draining at once take different rows; a row whose archive
// write succeeded but whose delete did not commit is drained again, which
// the archive's content-derived _ids make harmless.
type ArchiveOutbox struct {
	db *pgxpool.Pool
}

var _ tempwatch.ArchiveOutbox = (*ArchiveOutbox)(nil)

// NewArchiveOutbox returns an ArchiveOutbox on db.
func NewArchiveOutbox(db *pgxpool.Pool) *ArchiveOutbox { return &ArchiveOutbox{db: db} }

// Outbox row kinds.
const (
	outboxRawPayloads = "raw_payloads"
	outboxDeadLetters = "dead_letters"
)

// The body encodings. Rows written by one release are drained by the next:
// fields are only ever added.
type outboxPayload struct {
	SensorID   string    `json:"sensor_id"`
	MeasuredAt time.Time `json:"measured_at"`
	Topic      string    `json:"topic"`
	Source     string    `json:"source"`
	ReceivedAt time.Time `json:"received_at"`
	Raw        []byte    `json:"raw"`
}

type outboxDeadLetter struct {
	MessageID  string    `json:"message_id"`
	ClientID   string    `json:"client_id,omitempty"`
	SensorID   string    `json:"sensor_id,omitempty"`
	Reason     string    `json:"reason"`
	Topic      string    `json:"topic"`
	Source     string    `json:"source"`
	ReceivedAt time.Time `json:"received_at"`
	Raw        []byte    `json:"raw"`
	Size       int       `json:"size,omitempty"`
}

// Stash keeps ps and ds, a row each, in one statement. Raw bytes are kept
// whole: dead-letter ids hash them, so a truncated copy would not be
// recognised as the one an earlier, timed-out attempt may have stored.
func (o *ArchiveOutbox) Stash(ctx context.Context, ps []tempwatch.RawPayload, ds []tempwatch.DeadLetter) error {
	var kinds []string
	var items []int32
	var bodies [][]byte
	if len(ps) > 0 {
		enc := make([]outboxPayload, len(ps))
		for i, p := range ps {
			enc[i] = outboxPayload(p)
		}
		b, err := json.Marshal(enc)
		if err != nil {
			return fmt.Errorf("encode outbox raw payloads: %w", err)
		}
		kinds, items, bodies = append(kinds, outboxRawPayloads), append(items, int32(len(ps))), append(bodies, b)
	}
	if len(ds) > 0 {
		enc := make([]outboxDeadLetter, len(ds))
		for i, d := range ds {
			enc[i] = outboxDeadLetter(d)
		}
		b, err := json.Marshal(enc)
		if err != nil {
			return fmt.Errorf("encode outbox dead letters: %w", err)
		}
		kinds, items, bodies = append(kinds, outboxDeadLetters), append(items, int32(len(ds))), append(bodies, b)
	}
	if len(kinds) == 0 {
		return nil
	}
	if _, err := o.db.Exec(ctx, `INSERT INTO archive_outbox (kind, items, body)
		SELECT * FROM unnest($1::text[], $2::int[], $3::bytea[])`, kinds, items, bodies); err != nil {
		return fmt.Errorf("stash in archive outbox: %w", err)
	}
	return nil
}

type outboxRow struct {
	id   int64
	kind string
	body []byte
}

// Drain moves up to limit rows into archive in one transaction, which holds
// their row locks while archive writes them. The delete and the commit run
// even when ctx ends after a write succeeded, so the work is not redone.
func (o *ArchiveOutbox) Drain(ctx context.Context, archive tempwatch.PayloadArchive, limit int) (int, error) {
	tx, err := o.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("drain archive outbox: %w", err)
	}
	finish, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	defer func() { _ = tx.Rollback(finish) }()

	rows, _ := tx.Query(ctx, `SELECT id, kind, body FROM archive_outbox
		ORDER BY attempts, id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	taken, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (outboxRow, error) {
		var row outboxRow
		err := r.Scan(&row.id, &row.kind, &row.body)
		return row, err
	})
	if err != nil {
		return 0, fmt.Errorf("drain archive outbox: %w", err)
	}
	var moved []int64
	var failed error
	var failedID int64
	for _, row := range taken {
		if err := row.archive(ctx, archive); err != nil {
			failed, failedID = fmt.Errorf("archive outbox row %d (%s): %w", row.id, row.kind, err), row.id
			break
		}
		moved = append(moved, row.id)
	}
	if len(moved) > 0 {
		if _, err := tx.Exec(finish, `DELETE FROM archive_outbox WHERE id = ANY($1)`, moved); err != nil {
			return 0, errors.Join(failed, fmt.Errorf("delete drained outbox rows: %w", err))
		}
	}
	if failed != nil {
		if _, err := tx.Exec(finish, `UPDATE archive_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1`,
			failedID, failed.Error()); err != nil {
			return 0, errors.Join(failed, fmt.Errorf("count outbox attempt: %w", err))
		}
	}
	if err := tx.Commit(finish); err != nil {
		return 0, errors.Join(failed, fmt.Errorf("commit outbox drain: %w", err))
	}
	return len(moved), failed
}

// archive writes the row's call to archive, as the call that failed would have.
func (r outboxRow) archive(ctx context.Context, archive tempwatch.PayloadArchive) error {
	switch r.kind {
	case outboxRawPayloads:
		var enc []outboxPayload
		if err := json.Unmarshal(r.body, &enc); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		ps := make([]tempwatch.RawPayload, len(enc))
		for i, p := range enc {
			ps[i] = tempwatch.RawPayload(p)
		}
		return archive.InsertRawPayloads(ctx, ps)
	case outboxDeadLetters:
		var enc []outboxDeadLetter
		if err := json.Unmarshal(r.body, &enc); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		ds := make([]tempwatch.DeadLetter, len(enc))
		for i, d := range enc {
			ds[i] = tempwatch.DeadLetter(d)
		}
		return archive.InsertDeadLetters(ctx, ds)
	default:
		return fmt.Errorf("unknown kind %q", r.kind)
	}
}

// Pending counts the rows and the items in them.
func (o *ArchiveOutbox) Pending(ctx context.Context) (tempwatch.OutboxPending, error) {
	var p tempwatch.OutboxPending
	err := o.db.QueryRow(ctx, `SELECT count(*),
			coalesce(sum(items) FILTER (WHERE kind = 'raw_payloads'), 0),
			coalesce(sum(items) FILTER (WHERE kind = 'dead_letters'), 0)
		FROM archive_outbox`).Scan(&p.Calls, &p.Payloads, &p.DeadLetters)
	if err != nil {
		return p, fmt.Errorf("count archive outbox: %w", err)
	}
	return p, nil
}
