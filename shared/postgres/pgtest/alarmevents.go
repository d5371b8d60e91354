package pgtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// MustAlarmEvent inserts a cleared high alarm of sensorID (of clientID),
// started now (so each call's alarm is its own), and an alarm event of type
// typ for it, as the alarm evaluation writes them, and returns the event's
// id.
func MustAlarmEvent(tb testing.TB, db *pgxpool.Pool, clientID, sensorID, typ string) string {
	tb.Helper()
	id, err := InsertAlarmEvent(context.Background(), db, clientID, sensorID, typ)
	if err != nil {
		tb.Fatalf("pgtest.MustAlarmEvent(%s): %v", typ, err)
	}
	return id
}

// InsertAlarmEvent is MustAlarmEvent within ctx, returning its error: for a
// test that bounds how long the write may take.
func InsertAlarmEvent(ctx context.Context, db *pgxpool.Pool, clientID, sensorID, typ string) (string, error) {
	var id int64
	err := db.QueryRow(ctx, `WITH a AS (
			INSERT INTO alarms (sensor_id, client_id, kind, state, started_at, last_at, opened_at, cleared_at, peak)
			SELECT $1, $2, 'high', 'cleared', t, t + interval '5 minutes', t + interval '1 minute', t + interval '6 minutes', 9.5
			FROM clock_timestamp() t
			RETURNING id, sensor_id, client_id, kind, state, started_at)
		INSERT INTO alarm_events (alarm_id, client_id, type, body)
		SELECT id, client_id, $3, jsonb_build_object('id', id, 'sensor_id', sensor_id, 'client_id', client_id,
			'kind', kind, 'state', state, 'started_at', started_at)
		FROM a RETURNING id`, sensorID, clientID, typ).Scan(&id)
	return fmt.Sprint(id), err
}
