package postgres_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// sweepNow is the sweeps' clock; the fraction checks that bodies render
// microseconds as encoding/json does.
var sweepNow = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

// mustHeard sets sensor id's silence threshold (0 keeps the default) and
// last receipt (zero: never heard from).
func mustHeard(tb testing.TB, db *pgxpool.Pool, id string, silenceAfter time.Duration, lastReceived time.Time) {
	tb.Helper()
	var last *time.Time
	if !lastReceived.IsZero() {
		last = &lastReceived
	}
	_, err := db.Exec(context.Background(), `UPDATE sensors SET
		silence_after = CASE WHEN $2::bigint = 0 THEN silence_after ELSE make_interval(secs => $2::bigint) END,
		last_received_at = $3 WHERE id = $1`, id, int64(silenceAfter/time.Second), last)
	require.NoError(tb, err)
}

// silentAlarms reads the silent alarms of the schema by sensor, oldest
// first, as the API shows them (times in UTC).
func silentAlarms(tb testing.TB, db *pgxpool.Pool) map[string][]tempwatch.Alarm {
	tb.Helper()
	ctx := context.Background()
	var ids []string
	rows, err := db.Query(ctx, `SELECT id FROM alarms WHERE kind = 'silent' ORDER BY started_at`)
	require.NoError(tb, err)
	ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(tb, err)
	out := map[string][]tempwatch.Alarm{}
	for _, id := range ids {
		a, err := postgres.NewAlarmStore(db).FindAlarmByID(ctx, id)
		require.NoError(tb, err)
		out[a.SensorID] = append(out[a.SensorID], inUTC(*a))
	}
	return out
}

func inUTC(a tempwatch.Alarm) tempwatch.Alarm {
	a.StartedAt, a.OpenedAt, a.LastAt = a.StartedAt.UTC(), a.OpenedAt.UTC(), a.LastAt.UTC()
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	if a.ClearedAt != nil {
		c := a.ClearedAt.UTC()
		a.ClearedAt = &c
	}
	return a
}

type alarmEvent struct {
	AlarmID, ClientID, Type string
	Body                    []byte
}

func alarmEvents(tb testing.TB, db *pgxpool.Pool) map[string][]alarmEvent {
	tb.Helper()
	rows, err := db.Query(context.Background(), `SELECT alarm_id, client_id, type, body::text FROM alarm_events ORDER BY id`)
	require.NoError(tb, err)
	defer rows.Close()
	out := map[string][]alarmEvent{}
	for rows.Next() {
		var e alarmEvent
		require.NoError(tb, rows.Scan(&e.AlarmID, &e.ClientID, &e.Type, &e.Body))
		out[e.AlarmID] = append(out[e.AlarmID], e)
	}
	require.NoError(tb, rows.Err())
	return out
}

func TestOpenSilentAlarms(t *testing.T) {
	db := pgtest.MustDB(t)
	ctx := context.Background()
	store := postgres.NewSilenceStore(db)
	store.SetChunk(2) // several statements, each sensor in one
	acme := pgtest.MustClient(t, db, "acme", "")
	other := pgtest.MustClient(t, db, "other", "")

	odd := sweepNow.Add(-20*time.Minute - 123456*time.Microsecond) // a fraction with no trailing zero
	tests := []struct {
		name         string
		client       string
		silenceAfter time.Duration // 0: the default, 15 minutes
		lastReceived time.Time     // zero: never heard from
		wantOpen     bool
	}{
		{"default threshold passed", acme, 0, sweepNow.Add(-20 * time.Minute), true},
		{"default threshold not yet", acme, 0, sweepNow.Add(-14*time.Minute - 59*time.Second), false},
		{"threshold reached exactly", acme, 0, sweepNow.Add(-15 * time.Minute), true},
		{"own short threshold passed", acme, 5 * time.Minute, sweepNow.Add(-6 * time.Minute), true},
		{"own long threshold not yet", acme, 2 * time.Hour, sweepNow.Add(-time.Hour), false},
		{"fraction of a second", acme, 0, odd, true},
		{"never heard from", acme, time.Minute, time.Time{}, false},
		{"other client's silent sensor", other, 0, sweepNow.Add(-time.Hour), true},
		{"other client's sensor heard lately", other, 0, sweepNow.Add(-time.Minute), false},
	}
	ids := make([]string, len(tests))
	for i, tt := range tests {
		dev := "dev-" + string(rune('a'+i))
		ids[i] = pgtest.MustSensor(t, db, tt.client, dev, "key-"+dev)
		mustHeard(t, db, ids[i], tt.silenceAfter, tt.lastReceived)
	}
	want := 0
	for _, tt := range tests {
		if tt.wantOpen {
			want++
		}
	}

	n, err := store.OpenSilentAlarms(ctx, sweepNow)
	require.NoError(t, err)
	assert.Equal(t, want, n, "OpenSilentAlarms(now) opened")

	alarms, events := silentAlarms(t, db), alarmEvents(t, db)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := alarms[ids[i]]
			if !tt.wantOpen {
				assert.Empty(t, got, "a sensor not due got a silent alarm")
				return
			}
			require.Len(t, got, 1)
			a := got[0]
			threshold := tt.silenceAfter
			if threshold == 0 {
				threshold = 15 * time.Minute
			}
			assert.Equal(t, tt.client, a.ClientID)
			assert.Equal(t, tempwatch.AlarmSilent, a.Kind)
			assert.Equal(t, tempwatch.AlarmOpen, a.State)
			assert.True(t, tt.lastReceived.Equal(a.StartedAt), "started_at = %v, want the last receipt %v", a.StartedAt, tt.lastReceived)
			assert.True(t, a.LastAt.Equal(a.StartedAt), "last_at = %v, want started_at", a.LastAt)
			assert.True(t, tt.lastReceived.Add(threshold).Equal(a.OpenedAt), "opened_at = %v, want %v", a.OpenedAt, tt.lastReceived.Add(threshold))
			assert.Nil(t, a.Peak)
			assert.Nil(t, a.ClearedAt)

			evs := events[a.ID]
			require.Len(t, evs, 1, "events of the alarm")
			assert.Equal(t, tempwatch.EventAlarmOpened, evs[0].Type)
			assert.Equal(t, tt.client, evs[0].ClientID)
			var decoded tempwatch.Alarm
			require.NoError(t, json.Unmarshal(evs[0].Body, &decoded))
			// An open silence lasts until now: the body says how long at
			// the sweep, the API at its read.
			assert.InDelta(t, a.DurationSeconds, decoded.DurationSeconds, 60, "duration_seconds")
			decoded.DurationSeconds = a.DurationSeconds
			assert.Equal(t, a, inUTC(decoded), "the body decodes to the alarm as the API shows it")
			var keys map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(evs[0].Body, &keys))
			assert.Len(t, keys, 14, "every field of tempwatch.Alarm, no other: %s", evs[0].Body)
		})
	}

	// A live silence is not opened twice, however often the sweep runs.
	n, err = store.OpenSilentAlarms(ctx, sweepNow.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 3, n, "a later sweep opens only the sensors that became due meanwhile (the three heard from and not yet due)")
	n, err = store.OpenSilentAlarms(ctx, sweepNow.Add(time.Hour))
	require.NoError(t, err)
	assert.Zero(t, n, "a sweep again at the same time")
	for i, tt := range tests {
		if tt.lastReceived.IsZero() {
			assert.Empty(t, silentAlarms(t, db)[ids[i]], "%s: a sensor never heard from is never swept", tt.name)
			continue
		}
		assert.Len(t, silentAlarms(t, db)[ids[i]], 1, "%s", tt.name)
	}
}

// Once ingest cleared a silence (the next batch), the sensor's next silence
// is a new alarm; a cleared silence with the same start is not opened again.
func TestOpenSilentAlarmsAfterClear(t *testing.T) {
	db := pgtest.MustDB(t)
	ctx := context.Background()
	store := postgres.NewSilenceStore(db)
	sensor := pgtest.MustSensor(t, db, pgtest.MustClient(t, db, "acme", ""), "cr-1", "key")
	first := sweepNow.Add(-time.Hour)
	mustHeard(t, db, sensor, 0, first)
	n, err := store.OpenSilentAlarms(ctx, sweepNow)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	// What ingest does on the next batch, without moving the last receipt:
	// the silence since first is over, and not opened again.
	_, err = db.Exec(ctx, `UPDATE alarms SET state = 'cleared', cleared_at = $1 WHERE sensor_id = $2`, sweepNow, sensor)
	require.NoError(t, err)
	n, err = store.OpenSilentAlarms(ctx, sweepNow.Add(time.Minute))
	require.NoError(t, err)
	assert.Zero(t, n, "a silence with the start of a cleared one")

	second := sweepNow.Add(time.Minute)
	mustHeard(t, db, sensor, 0, second)
	n, err = store.OpenSilentAlarms(ctx, second.Add(15*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got := silentAlarms(t, db)[sensor]
	require.Len(t, got, 2)
	assert.Equal(t, tempwatch.AlarmCleared, got[0].State)
	assert.Equal(t, tempwatch.AlarmOpen, got[1].State)
	assert.True(t, second.Equal(got[1].StartedAt))
}

// A sensor whose batch is being stored (ingest holds its row FOR NO KEY
// UPDATE) is skipped, not waited for, and once that batch committed its new
// last receipt is what the sweep sees.
func TestOpenSilentAlarmsSkipsSensorsBeingIngested(t *testing.T) {
	db := pgtest.MustDB(t)
	ctx := context.Background()
	store := postgres.NewSilenceStore(db)
	client := pgtest.MustClient(t, db, "acme", "")
	busy := pgtest.MustSensor(t, db, client, "busy", "key-busy")
	idle := pgtest.MustSensor(t, db, client, "idle", "key-idle")
	mustHeard(t, db, busy, 0, sweepNow.Add(-time.Hour))
	mustHeard(t, db, idle, 0, sweepNow.Add(-time.Hour))

	tx, err := db.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM sensors WHERE id = $1 FOR NO KEY UPDATE`, busy)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE sensors SET last_received_at = $2 WHERE id = $1`, busy, sweepNow)
	require.NoError(t, err)

	sweepCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := store.OpenSilentAlarms(sweepCtx, sweepNow)
	require.NoError(t, err, "the sweep waits for no batch")
	assert.Equal(t, 1, n)
	require.NoError(t, tx.Commit(ctx))

	n, err = store.OpenSilentAlarms(ctx, sweepNow.Add(time.Minute))
	require.NoError(t, err)
	assert.Zero(t, n, "the batch's receipt makes the sensor not due")
	alarms := silentAlarms(t, db)
	assert.Empty(t, alarms[busy])
	assert.Len(t, alarms[idle], 1)
}

// Sweeps at once (two scheduled invocations overlapping) open each silence
// once between them.
func TestOpenSilentAlarmsConcurrently(t *testing.T) {
	db := pgtest.MustDB(t)
	ctx := context.Background()
	store := postgres.NewSilenceStore(db)
	store.SetChunk(7)
	client := pgtest.MustClient(t, db, "acme", "")
	const sensors = 50
	_, err := db.Exec(ctx, `INSERT INTO sensors (client_id, device_id, name, device_key_hash, last_received_at)
		SELECT $1, 'd' || i, 'd' || i, sha256(('k' || i)::bytea), $2::timestamptz - i * interval '1 minute' FROM generate_series(16, 15 + $3::int) i`,
		client, sweepNow, sensors)
	require.NoError(t, err)

	var wg sync.WaitGroup
	opened := make([]int, 4)
	errs := make([]error, len(opened))
	for i := range opened {
		wg.Go(func() { opened[i], errs[i] = store.OpenSilentAlarms(ctx, sweepNow) })
	}
	wg.Wait()
	total := 0
	for i := range opened {
		require.NoError(t, errs[i])
		total += opened[i]
	}
	assert.Equal(t, sensors, total, "silences opened by all sweeps (each: %v)", opened)
	var alarms, events int
	require.NoError(t, db.QueryRow(ctx, `SELECT (SELECT count(*) FROM alarms), (SELECT count(*) FROM alarm_events)`).Scan(&alarms, &events))
	assert.Equal(t, sensors, alarms)
	assert.Equal(t, sensors, events)
}
