package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Lowering a limit while an excursion is under way re-evaluates the present
// "back to the last reading settled under the new rule" (reevaluateSensor's
// doc): the excursion under the new rule starts at the first reading above
// the new limit. The window is anchored at the stored excursion's start
// (raised under the old rule), so the earlier reading is missed: the start
// is late and, with a delay, the alarm that is due does not open.
func TestAlarmLowerLimitDuringLiveExcursion(t *testing.T) {
	db := pgtest.MustDB(t)
	store := postgres.NewReadingStore(db)
	ctx := t.Context()
	client := pgtest.MustClient(t, db, "alarm-rule", "")
	s := mustAlarmSensor(t, db, client, "rl", tempwatch.ExcursionRule{High: fptr(8), Delay: 2 * time.Minute})
	var rs []tempwatch.Reading
	for m, v := range []float64{5, 7, 9, 9} {
		rs = append(rs, tempwatch.Reading{SensorID: s.id, MeasuredAt: alarmMinute(m), Value: v})
	}
	_, err := store.WriteReadings(ctx, rs)
	require.NoError(t, err)
	require.Equal(t, "[high pending 08:02..08:03 cleared 00:00 opened 00:00 peak 9]", fmt.Sprint(readAlarms(t, db, s.id)))

	_, err = postgres.NewSensorStore(db).UpdateSensor(ctx, s.id, tempwatch.SensorUpdate{AlertHigh: tempwatch.NullFloat{Set: true, Value: fptr(6)}})
	require.NoError(t, err)
	newRule := tempwatch.ExcursionRule{High: fptr(6), Delay: 2 * time.Minute}
	assert.Equal(t, fmt.Sprint(wantAlarms(newRule, readSamples(t, db, s.id))), fmt.Sprint(readAlarms(t, db, s.id)),
		"above 6 since 08:01 (the last reading settled under the new rule is 08:00): open since 08:03")
}

// An acknowledgement that commits while a batch is evaluating the alarm (it
// read the alarm before the ack, it updates it after) is kept in the row,
// but the batch's alarm.cleared event body is built in Go from the stale
// read: the outbox says "acknowledged", then "cleared, not acknowledged".
func TestAlarmClearedEventKeepsConcurrentAck(t *testing.T) {
	db := pgtest.MustDB(t)
	store := postgres.NewReadingStore(db)
	ctx := t.Context()
	client := pgtest.MustClient(t, db, "alarm-ack", "")
	s := mustAlarmSensor(t, db, client, "ra", tempwatch.ExcursionRule{High: fptr(8)})
	_, err := store.WriteReadings(ctx, []tempwatch.Reading{
		{SensorID: s.id, MeasuredAt: alarmMinute(0), Value: 5},
		{SensorID: s.id, MeasuredAt: alarmMinute(1), Value: 9},
	})
	require.NoError(t, err)
	var id string
	require.NoError(t, db.QueryRow(ctx, `SELECT id FROM alarms WHERE sensor_id = $1 AND state = 'open'`, s.id).Scan(&id))

	// The acknowledgement, as AcknowledgeAlarm does it: the row locked and
	// updated, not yet committed.
	ack, err := db.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = ack.Rollback(ctx) }()
	_, err = ack.Exec(ctx, `SELECT 1 FROM alarms WHERE id = $1 FOR NO KEY UPDATE`, id)
	require.NoError(t, err)
	_, err = ack.Exec(ctx, `UPDATE alarms SET acknowledged_at = now(), ack_comment = 'on it', updated_at = now() WHERE id = $1`, id)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, err := store.WriteReadings(ctx, []tempwatch.Reading{{SensorID: s.id, MeasuredAt: alarmMinute(2), Value: 5}})
		done <- err
	}()
	// Wait until the batch waits for the alarm's row lock (its UPDATE, or with
	// the fix its read of the live excursions).
	require.Eventually(t, func() bool {
		var n int
		_ = db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))`,
			ack.Conn().PgConn().PID()).Scan(&n)
		return n > 0
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, ack.Commit(ctx))
	require.NoError(t, <-done)

	var state, comment string
	require.NoError(t, db.QueryRow(ctx, `SELECT state, ack_comment FROM alarms WHERE id = $1`, id).Scan(&state, &comment))
	require.Equal(t, "cleared", state)
	require.Equal(t, "on it", comment, "the row keeps the acknowledgement")
	var body string
	require.NoError(t, db.QueryRow(ctx, `SELECT coalesce(body->'acknowledgement'->>'comment', '<none>') FROM alarm_events
		WHERE alarm_id = $1 AND type = 'alarm.cleared'`, id).Scan(&body))
	assert.Equal(t, "on it", body, "the alarm.cleared body is the alarm as it is stored after the clear")
}

// The sweep opens a silence at last receipt + threshold by its own clock
// (the function's); the next batch clears it at its transaction's start by
// the database's clock. A sweep clock a little ahead (or a batch whose
// transaction began just before the sweep locked the sensor) leaves a
// silence cleared before it opened.
func TestAlarmSilenceClearedBeforeOpened(t *testing.T) {
	db := pgtest.MustDB(t)
	ctx := t.Context()
	client := pgtest.MustClient(t, db, "alarm-silence", "")
	id := pgtest.MustSensor(t, db, client, "rs", "key-rs-0123456789abcdef")
	var dbNow time.Time
	require.NoError(t, db.QueryRow(ctx, `SELECT now()`).Scan(&dbNow))
	mustHeard(t, db, id, 0, dbNow.Add(-15*time.Minute+time.Second)) // due in a second
	n, err := postgres.NewSilenceStore(db).OpenSilentAlarms(ctx, dbNow.Add(2*time.Second))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = postgres.NewReadingStore(db).WriteReadings(ctx, []tempwatch.Reading{{SensorID: id, MeasuredAt: dbNow, Value: 4}})
	require.NoError(t, err)
	var opened, cleared time.Time
	require.NoError(t, db.QueryRow(ctx, `SELECT opened_at, cleared_at FROM alarms WHERE sensor_id = $1 AND kind = 'silent'`, id).Scan(&opened, &cleared))
	assert.False(t, cleared.Before(opened), "a silence opened at %s is cleared at %s", opened, cleared)
}
