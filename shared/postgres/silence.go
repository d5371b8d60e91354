package postgres

import (
	"context"
	"fmt"
	"time"

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
// opens: a mass silence (a site's network down) is opened in short
// transactions, so no batch of readings waits on a sensor lock for longer
// than one chunk takes.
const silenceChunk = 2000

// openSilentAlarmsSQL opens the due silences among the next $3 sensors by
// id after $2, and writes each one's alarm.opened event, in one statement:
// an alarm is never without its event. It returns how many sensors it
// locked as due, the last one's id (the next chunk's start) and how many
// alarms it opened.
//
// Due: heard from at least once (a sensor never heard from has no last
// receipt to be silent since), last receipt plus its own threshold at or
// before $1, and no live silent alarm (alarms_live).
//
// Racing ingest. A batch locks its sensors' rows FOR NO KEY UPDATE while it
// stores and evaluates them, moves last_received_at and clears a live
// silent alarm. The sweep takes the same lock on the sensors it found due,
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
// Two sweeps at once split the due sensors between them (each skips what
// the other locked), and ON CONFLICT DO NOTHING is the backstop for any
// unique index of alarms: a silence that some other writer opened first,
// or one already recorded with that very start, is not opened twice nor
// fails the sweep of every other sensor. Locks are taken in id order.
var openSilentAlarmsSQL = `
WITH due AS (
	SELECT s.id, s.client_id, s.last_received_at, s.last_received_at + s.silence_after AS opened_at
	FROM sensors s
	WHERE s.id > $2::uuid
	  AND s.last_received_at IS NOT NULL
	  AND s.last_received_at + s.silence_after <= $1::timestamptz
	  AND NOT EXISTS (
		SELECT 1 FROM alarms a
		WHERE a.sensor_id = s.id AND a.kind = 'silent' AND a.state IN ('pending', 'open'))
	ORDER BY s.id
	LIMIT $3
	FOR NO KEY UPDATE OF s SKIP LOCKED
), opened AS (
	INSERT INTO alarms (sensor_id, client_id, kind, state, started_at, last_at, opened_at)
	SELECT id, client_id, 'silent', 'open', last_received_at, last_received_at, opened_at FROM due ORDER BY id
	ON CONFLICT DO NOTHING
	RETURNING *
), events AS (
	INSERT INTO alarm_events (alarm_id, client_id, type, body)
	SELECT opened.id, opened.client_id, 'alarm.opened', ` + alarmBodySQL("opened") + ` FROM opened
	RETURNING 1
)
SELECT (SELECT count(*) FROM due), (SELECT max(id::text) FROM due), (SELECT count(*) FROM events)`

// OpenSilentAlarms opens the silences due at now (see openSilentAlarmsSQL),
// chunk by chunk in id order, and returns how many it opened. A failure
// keeps the chunks already committed: their alarms are real, and the next
// sweep goes on from there.
func (s *SilenceStore) OpenSilentAlarms(ctx context.Context, now time.Time) (int, error) {
	opened, after := 0, "00000000-0000-0000-0000-000000000000"
	for {
		var due, n int
		var last *string
		if err := s.db.QueryRow(ctx, openSilentAlarmsSQL, now, after, s.chunk).Scan(&due, &last, &n); err != nil {
			return opened, fmt.Errorf("open silent alarms: %w", err)
		}
		opened += n
		if due < s.chunk || last == nil {
			return opened, nil
		}
		after = *last
	}
}

// alarmBodySQL is the jsonb of alarm row r as tempwatch.Alarm marshals it
// (the alarm events' body): the same keys, null where the struct holds a
// nil pointer, user_id left out of an acknowledgement once its user is
// gone, and times as encoding/json writes a UTC time.Time.
func alarmBodySQL(r string) string {
	return `jsonb_build_object(
		'id', ` + r + `.id,
		'sensor_id', ` + r + `.sensor_id,
		'client_id', ` + r + `.client_id,
		'kind', ` + r + `.kind,
		'state', ` + r + `.state,
		'started_at', ` + jsonTimeSQL(r+".started_at") + `,
		'opened_at', ` + jsonTimeSQL("coalesce("+r+".opened_at, '0001-01-01 00:00:00+00')") + `,
		'last_at', ` + jsonTimeSQL(r+".last_at") + `,
		'cleared_at', ` + jsonTimeSQL(r+".cleared_at") + `,
		'peak', ` + r + `.peak,
		'duration_seconds', extract(epoch FROM coalesce(` + r + `.cleared_at, ` + r + `.last_at) - ` + r + `.started_at)::float8,
		'acknowledgement', CASE WHEN ` + r + `.acknowledged_at IS NOT NULL THEN
			CASE WHEN ` + r + `.acknowledged_by IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('user_id', ` + r + `.acknowledged_by) END
			|| jsonb_build_object('at', ` + jsonTimeSQL(r+".acknowledged_at") + `, 'comment', ` + r + `.ack_comment) END,
		'created_at', ` + jsonTimeSQL(r+".created_at") + `,
		'updated_at', ` + jsonTimeSQL(r+".updated_at") + `)`
}

// jsonTimeSQL renders timestamptz expression t (NULL stays NULL) as
// encoding/json renders a UTC time.Time: RFC 3339 in UTC with Z, the
// fraction's trailing zeros dropped (all of it when whole seconds). The
// session's TimeZone does not matter, and a body compares equal to the API's
// answer byte for byte in every value.
func jsonTimeSQL(t string) string {
	// The inner rtrim stops at the fraction's point, which to_char always
	// writes: whole seconds' zeros are never reached. rtrim, not a regular
	// expression: a mass silence renders hundreds of thousands of times.
	return `(rtrim(rtrim(to_char((` + t + `) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z')`
}
