package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.SilenceSweep = (*SilenceStore)(nil)

// SilenceStore opens silent alarms: the scheduled silence sweep's store.
type SilenceStore struct {
	db    *pgxpool.Pool
	chunk int // sensors per statement: silenceChunk, fewer in tests
}

// NewSilenceStore returns a SilenceStore over db.
func NewSilenceStore(db *pgxpool.Pool) *SilenceStore {
	return &SilenceStore{db: db, chunk: silenceChunk}
}

// silenceChunk bounds the sensors one statement of the sweep locks and
// opens. A mass silence (a site's network down) is then opened in
// statements that each end well within the function's timeout and commit
// what they opened: one statement for all could outlast the invocation,
// be cancelled, roll back and start over at every run.
const silenceChunk = 2000

// dueSilencesSQL finds the sensors whose silence is due at $1: heard from
// at least once (a sensor never heard from has no last receipt to be silent
// since), last receipt plus its own threshold at or before $1, and no live
// silent alarm (alarms_live). It locks nothing and writes nothing: a sweep
// that finds nothing due, every minute's usual case, is this one read.
const dueSilencesSQL = `
SELECT s.id FROM sensors s
WHERE s.last_received_at IS NOT NULL
  AND s.last_received_at + s.silence_after <= $1::timestamptz
  AND NOT EXISTS (
	SELECT 1 FROM alarms a
	WHERE a.sensor_id = s.id AND a.kind = 'silent' AND a.state IN ('pending', 'open'))
ORDER BY s.id`

// openSilentAlarmsSQL opens the silences of the sensors $2 that are still
// due at $1 (dueSilencesSQL's conditions, checked again: the list is a
// moment old) and writes each one's alarm.opened event (alarm_json: the
// alarm as the API shows it), in one statement, so an alarm is never
// without its event. It returns how many it opened.
//
// Racing ingest. A batch locks its sensors' rows FOR NO KEY UPDATE while it
// stores and evaluates them, moves last_received_at and clears a live
// silent alarm. The sweep takes the same lock on the sensors it opens,
// SKIP LOCKED:
//   - a sensor whose batch is in flight is locked, so it is skipped; the
//     next sweep sees its new last receipt and finds it not due;
//   - a batch that committed after this statement's snapshot left a newer
//     row version: locking follows it and checks the WHERE clause again on
//     it (READ COMMITTED's recheck), so the fresh last receipt drops it;
//   - a batch that starts after the sweep locked the row waits for the
//     sweep's commit; the silence it then finds was real (the sensor was
//     silent for its threshold before the batch came) and the batch clears
//     it, provided ingest reads live silences after it holds the lock
//     (a statement that starts after the lock is granted), not from a
//     snapshot taken before.
//
// Two sweeps at once split the sensors between them (each skips what the
// other locked), and ON CONFLICT DO NOTHING is the backstop for any unique
// index of alarms: a silence that some other writer opened first, or one
// already recorded with that very start, is not opened twice nor fails the
// sweep of every other sensor. Locks are taken in id order.
const openSilentAlarmsSQL = `
WITH due AS (
	SELECT s.id, s.client_id, s.last_received_at, s.last_received_at + s.silence_after AS opened_at
	FROM sensors s
	WHERE s.id = ANY($2::uuid[])
	  AND s.last_received_at IS NOT NULL
	  AND s.last_received_at + s.silence_after <= $1::timestamptz
	  AND NOT EXISTS (
		SELECT 1 FROM alarms a
		WHERE a.sensor_id = s.id AND a.kind = 'silent' AND a.state IN ('pending', 'open'))
	ORDER BY s.id
	FOR NO KEY UPDATE OF s SKIP LOCKED
), opened AS (
	INSERT INTO alarms AS a (sensor_id, client_id, kind, state, started_at, last_at, opened_at)
	SELECT id, client_id, 'silent', 'open', last_received_at, last_received_at, opened_at FROM due ORDER BY id
	ON CONFLICT DO NOTHING
	RETURNING a
)
INSERT INTO alarm_events (alarm_id, client_id, type, body)
SELECT (opened.a).id, (opened.a).client_id, 'alarm.opened', alarm_json(opened.a) FROM opened`

// OpenSilentAlarms opens the silences due at now and returns how many it
// opened: it finds the due sensors (dueSilencesSQL), then opens them a
// chunk at a time (openSilentAlarmsSQL). A failure keeps the chunks already
// committed: their alarms are real, and the next sweep goes on from there.
func (s *SilenceStore) OpenSilentAlarms(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.db.Query(ctx, dueSilencesSQL, now)
	if err != nil {
		return 0, fmt.Errorf("find due silences: %w", err)
	}
	due, err := pgx.CollectRows(rows, pgx.RowTo[[16]byte])
	if err != nil {
		return 0, fmt.Errorf("find due silences: %w", err)
	}
	opened := 0
	for chunk := range slices.Chunk(due, s.chunk) {
		tag, err := s.db.Exec(ctx, openSilentAlarmsSQL, now, chunk)
		if err != nil {
			return opened, fmt.Errorf("open silent alarms: %w", err)
		}
		opened += int(tag.RowsAffected())
	}
	return opened, nil
}
