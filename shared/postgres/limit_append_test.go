package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// oldBuildWrite is the build before 010's ingest of one reading: lock,
// write (the rollup triggers rebuild), last seen.
const oldBuildWrite = `
WITH ins AS (
	INSERT INTO readings (sensor_id, value, measured_at) VALUES ($1, $2, $3) RETURNING sensor_id, value, measured_at
)
INSERT INTO reading_rollups AS r (sensor_id, bucket_start, count, sum, min, max, first_at, last_at, mkt_sum)
SELECT sensor_id, rollup_bucket(measured_at), 1, value, value, value, measured_at, measured_at, mkt_term(value) FROM ins
ON CONFLICT (sensor_id, bucket_start) DO UPDATE SET count = r.count + 1, sum = r.sum + excluded.sum,
	min = least(r.min, excluded.min), max = greatest(r.max, excluded.max),
	first_at = least(r.first_at, excluded.first_at), last_at = greatest(r.last_at, excluded.last_at),
	mkt_sum = r.mkt_sum + excluded.mkt_sum`

// TestMigration010WaitsForTheBuildBefore: while migration 010 runs (its
// transaction not yet committed), the previous build ingests a low-only
// sensor. Were it to write then, its trigger would still run 008's rebuild
// (the low-only bug: a 0/0 row) after 010's rebuild of every low-only
// sensor had read the readings, and the new build's deltas would carry the
// bad row on. 010 locks the sensors first: the old build's batch waits for
// it and then runs the fixed rebuild. (Found by review; it failed before
// the lock.)
func TestMigration010WaitsForTheBuildBefore(t *testing.T) {
	ctx := context.Background()
	u := pgtest.MustSchemaURL(t)
	db, err := pgxpool.New(ctx, u)
	require.NoError(t, err)
	defer db.Close()
	ms, err := postgres.Migrations()
	require.NoError(t, err)
	var m010 string
	var later []string // the deploy's migrations after 010
	for _, m := range ms {
		if m.Version == 10 {
			m010 = m.SQL
			continue
		}
		if m.Version > 10 {
			later = append(later, m.SQL)
			continue
		}
		_, err := db.Exec(ctx, m.SQL)
		require.NoError(t, err, m.Name)
	}
	client := pgtest.MustClient(t, db, "race", "")
	s := pgtest.MustSensor(t, db, client, "r1", "key-r1-0123456789abcdef")
	_, err = db.Exec(ctx, `UPDATE sensors SET alert_low = 18, silence_after = '15 minutes' WHERE id = $1`, s)
	require.NoError(t, err)
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	oldIngest := func(conn *pgxpool.Conn, at time.Time, v float64) {
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `SELECT FROM sensors WHERE id = $1 FOR NO KEY UPDATE`, s)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, oldBuildWrite, s, v, at)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `UPDATE sensors SET last_measured_at = greatest(last_measured_at, $2) WHERE id = $1`, s, at)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
	}
	old, err := db.Acquire(ctx)
	require.NoError(t, err)
	defer old.Release()
	oldIngest(old, t0, 10)

	migrate, err := db.Begin(ctx) // the migrate step's transaction
	require.NoError(t, err)
	_, err = migrate.Exec(ctx, m010)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { // the old build, meanwhile
		defer close(done)
		oldIngest(old, t0.Add(20*time.Minute), 10)
	}()
	pid := old.Conn().PgConn().PID()
	require.Eventually(t, func() bool { // the old build's batch waits on a lock
		var waiting bool
		err := db.QueryRow(ctx, `SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&waiting)
		return err == nil && waiting
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, migrate.Commit(ctx))
	<-done
	for _, sql := range later {
		_, err := db.Exec(ctx, sql)
		require.NoError(t, err)
	}

	store := postgres.NewReadingStore(db)
	_, err = store.WriteReadings(ctx, []tempwatch.Reading{{SensorID: s, MeasuredAt: t0.Add(25 * time.Minute), Value: 10}})
	require.NoError(t, err, "the new build's first appending batch after the deploy")
	requireRollupsAsRebuilt(t, db, s)
}

// requireRollupsAsRebuilt compares the sensor's limit rollups with 010's
// rebuild of its whole history.
func requireRollupsAsRebuilt(t *testing.T, db *pgxpool.Pool, s string) {
	t.Helper()
	ctx := context.Background()
	rows := func() string {
		var out string
		require.NoError(t, db.QueryRow(ctx, `SELECT coalesce(string_agg(bucket_start::text || ' ' || above_us || '/' || below_us, ', ' ORDER BY bucket_start), '')
			FROM limit_rollups WHERE sensor_id = $1`, s).Scan(&out))
		return out
	}
	got := rows()
	_, err := db.Exec(ctx, `SELECT recompute_limit_rollups($1, '-infinity', 'infinity')`, s)
	require.NoError(t, err)
	require.Equal(t, rows(), got, "limit rollups (want: the rebuild's)")
	// The days are the 15-minute rows' sums, in each of the client's zones.
	days := func(sql string) string {
		var out string
		require.NoError(t, db.QueryRow(ctx, `SELECT coalesce(string_agg(x, ', ' ORDER BY x), '') FROM (`+sql+`) d(x)`, s).Scan(&out))
		return out
	}
	require.Equal(t, days(`
		SELECT z.tz || ' ' || (l.bucket_start AT TIME ZONE z.tz)::date || ' ' || sum(l.above_us) || '/' || sum(l.below_us)
		FROM limit_rollups l JOIN sensors s ON s.id = l.sensor_id
		CROSS JOIN LATERAL (SELECT timezone FROM clients WHERE id = s.client_id
		                    UNION ALL SELECT timezone FROM rollup_zones WHERE client_id = s.client_id) z(tz)
		WHERE l.sensor_id = $1 GROUP BY z.tz, (l.bucket_start AT TIME ZONE z.tz)::date`), days(`
		SELECT timezone || ' ' || day || ' ' || above_us || '/' || below_us FROM limit_rollups_daily
		WHERE sensor_id = $1 AND (above_us <> 0 OR below_us <> 0)`), "limit days (want: the sums of the rollups)")
}

// TestAppendWithCalendarSilence: silence_after '1 mon' passes the CHECK
// (<= 30 days compares a month as 30 days) and SQL adds it as a calendar
// month (Jan 31 + 1 mon is 28 days), while a delta would take its length,
// 30 days: such a sensor is left to the rebuild. (Found by review.)
func TestAppendWithCalendarSilence(t *testing.T) {
	ctx := context.Background()
	db := pgtest.MustDB(t)
	client := pgtest.MustClient(t, db, "month", "")
	s := pgtest.MustSensor(t, db, client, "m1", "key-m1-0123456789abcdef")
	_, err := db.Exec(ctx, `UPDATE sensors SET alert_low = 18, silence_after = '1 mon' WHERE id = $1`, s)
	require.NoError(t, err)
	store := postgres.NewReadingStore(db)
	t0 := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC) // + 1 mon = Feb 28: 28 days
	_, err = store.WriteReadings(ctx, []tempwatch.Reading{{SensorID: s, MeasuredAt: t0, Value: 10}})
	require.NoError(t, err)
	_, err = store.WriteReadings(ctx, []tempwatch.Reading{{SensorID: s, MeasuredAt: t0.Add(29 * 24 * time.Hour), Value: 10}})
	require.NoError(t, err)
	requireRollupsAsRebuilt(t, db, s)
}

// TestAppendHealsInexactRollups: stored limit rollups that are not what the
// readings say (here a bucket's time below set to zero by hand) would take
// a delta below zero, which the table refuses: the batch is written again,
// its sensors' limit rollups rebuilt from the readings by the write, and
// goes through.
func TestAppendHealsInexactRollups(t *testing.T) {
	ctx := context.Background()
	db := pgtest.MustDB(t)
	client := pgtest.MustClient(t, db, "heal", "")
	s := pgtest.MustSensor(t, db, client, "h1", "key-h1-0123456789abcdef")
	_, err := db.Exec(ctx, `UPDATE sensors SET alert_low = 18, alert_high = 25 WHERE id = $1`, s)
	require.NoError(t, err)
	store := postgres.NewReadingStore(db)
	t0 := time.Date(2026, 11, 30, 8, 2, 0, 0, time.UTC)
	_, err = store.WriteReadings(ctx, []tempwatch.Reading{{SensorID: s, MeasuredAt: t0, Value: 10}}) // below, held 15 minutes
	require.NoError(t, err)
	tag, err := db.Exec(ctx, `UPDATE limit_rollups SET below_us = 0 WHERE sensor_id = $1 AND bucket_start = '2026-11-30T08:15:00Z'`, s)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected(), "the hold reaches the next bucket")
	_, err = store.WriteReadings(ctx, []tempwatch.Reading{{SensorID: s, MeasuredAt: t0.Add(14 * time.Minute), Value: 20}})
	require.NoError(t, err, "a batch on inexact rollups")
	requireRollupsAsRebuilt(t, db, s)
}

// TestAppendHealsInexactRollupsTheGeneralWay: as above, in a batch that
// does not only append (a second sensor's reading is late), so its deltas
// go after the write's results, not in its pipeline: the refusal comes
// from there, and both sensors come out as rebuilt.
func TestAppendHealsInexactRollupsTheGeneralWay(t *testing.T) {
	ctx := context.Background()
	db := pgtest.MustDB(t)
	client := pgtest.MustClient(t, db, "heal2", "")
	s := pgtest.MustSensor(t, db, client, "h1", "key-h1-0123456789abcdef")
	late := pgtest.MustSensor(t, db, client, "h2", "key-h2-0123456789abcdef")
	_, err := db.Exec(ctx, `UPDATE sensors SET alert_low = 18, alert_high = 25 WHERE id = ANY($1::uuid[])`, []string{s, late})
	require.NoError(t, err)
	store := postgres.NewReadingStore(db)
	t0 := time.Date(2026, 11, 30, 8, 2, 0, 0, time.UTC)
	_, err = store.WriteReadings(ctx, []tempwatch.Reading{
		{SensorID: s, MeasuredAt: t0, Value: 10}, // below, held 15 minutes
		{SensorID: late, MeasuredAt: t0, Value: 10},
		{SensorID: late, MeasuredAt: t0.Add(10 * time.Minute), Value: 30},
	})
	require.NoError(t, err)
	tag, err := db.Exec(ctx, `UPDATE limit_rollups SET below_us = 0 WHERE sensor_id = $1 AND bucket_start = '2026-11-30T08:15:00Z'`, s)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected(), "the hold reaches the next bucket")
	results, err := store.WriteReadings(ctx, []tempwatch.Reading{
		{SensorID: s, MeasuredAt: t0.Add(14 * time.Minute), Value: 20},
		{SensorID: late, MeasuredAt: t0.Add(5 * time.Minute), Value: 30}, // between its stored two
	})
	require.NoError(t, err, "a batch on inexact rollups")
	require.True(t, results[0].Inserted && results[1].Inserted)
	requireRollupsAsRebuilt(t, db, s)
	requireRollupsAsRebuilt(t, db, late)
}

// TestAppendMeetsAStoredReading: a reading written by hand after the
// sensor's last_measured_at (which every writer keeps but SQL by hand need
// not) makes a batch look as if it only appended. The batch's evaluation,
// sent behind the write on that premise, would count the batch's value
// at that time (10, above the limit) where 5 is stored: the write fails
// the batch before its COMMIT (ingest_appended), and ingest writes it
// again the general way, the stored reading kept and the duplicate
// reported as such.
func TestAppendMeetsAStoredReading(t *testing.T) {
	ctx := context.Background()
	db, store, s, t0 := mustSensorAt5(t)
	_, err := db.Exec(ctx, oldBuildWrite, s, 5.0, t0.Add(time.Minute)) // by hand: last_measured_at stays t0
	require.NoError(t, err)

	results, err := store.WriteReadings(ctx, []tempwatch.Reading{
		{SensorID: s, MeasuredAt: t0.Add(time.Minute), Value: 10},
		{SensorID: s, MeasuredAt: t0.Add(2 * time.Minute), Value: 4},
	})
	require.NoError(t, err)
	require.False(t, results[0].Inserted, "the stored reading is a duplicate")
	require.NotZero(t, results[0].ReadingID, "linked to the stored one")
	require.True(t, results[1].Inserted)
	var value float64
	require.NoError(t, db.QueryRow(ctx, `SELECT value FROM readings WHERE sensor_id = $1 AND measured_at = $2`,
		s, t0.Add(time.Minute)).Scan(&value))
	require.Equal(t, 5.0, value, "the stored reading kept")
	var alarms int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM alarms WHERE sensor_id = $1`, s).Scan(&alarms))
	require.Zero(t, alarms, "no reading was above the limit")
	requireRollupsAsRebuilt(t, db, s)
}

// TestAppendMeetsOnlyStoredReadings: as TestAppendMeetsAStoredReading, but
// every reading of the batch is already stored (by hand, after
// last_measured_at): the write inserts none, and its check must still run.
// (Found by review: ingest_appended in the final SELECT's WHERE was a
// per-row join filter, never called without a row.)
func TestAppendMeetsOnlyStoredReadings(t *testing.T) {
	ctx := context.Background()
	db, store, s, t0 := mustSensorAt5(t)
	_, err := db.Exec(ctx, oldBuildWrite, s, 5.0, t0.Add(time.Minute)) // by hand: last_measured_at stays t0
	require.NoError(t, err)

	results, err := store.WriteReadings(ctx, []tempwatch.Reading{
		{SensorID: s, MeasuredAt: t0.Add(time.Minute), Value: 10},
	})
	require.NoError(t, err)
	require.False(t, results[0].Inserted, "the stored reading is a duplicate")
	require.NotZero(t, results[0].ReadingID, "linked to the stored one")
	var alarms int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM alarms WHERE sensor_id = $1`, s).Scan(&alarms))
	assert.Zero(t, alarms, "no stored reading was above the limit")
	var lastMeasured time.Time
	require.NoError(t, db.QueryRow(ctx, `SELECT last_measured_at FROM sensors WHERE id = $1`, s).Scan(&lastMeasured))
	assert.True(t, lastMeasured.Equal(t0), "no reading inserted: last_measured_at stays t0, got %v", lastMeasured)
	requireRollupsAsRebuilt(t, db, s)
}

// TestAppendSubMicrosecondFirst: the batch's first reading is 500ns after
// the sensor's newest, the same time at the microseconds PostgreSQL keeps:
// a duplicate, which Go and the lock must both see. (Found by review: Go
// compared nanoseconds, took the batch for appending, and committed an
// evaluation that counted the duplicate.)
func TestAppendSubMicrosecondFirst(t *testing.T) {
	ctx := context.Background()
	db, store, s, t0 := mustSensorAt5(t)

	results, err := store.WriteReadings(ctx, []tempwatch.Reading{
		{SensorID: s, MeasuredAt: t0.Add(500 * time.Nanosecond), Value: 10},
	})
	require.NoError(t, err)
	require.False(t, results[0].Inserted, "t0 at microsecond precision is stored")
	var alarms int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM alarms WHERE sensor_id = $1`, s).Scan(&alarms))
	require.Zero(t, alarms, "the only stored reading (5) is inside the limit")
}

// TestIngestAfterAColumnChange: a schema change that alters what a
// statement returns (here the type of a column the ingest lock reads) makes
// PostgreSQL refuse the statements each connection has prepared. The batch
// that meets it drops them and is written again; the next batches go on
// on the same connection. (Found by review: ingest prepares its statements
// by name, which pgx does not drop itself.)
func TestIngestAfterAColumnChange(t *testing.T) {
	ctx := context.Background()
	u := pgtest.MustMigratedURL(t)
	db, err := pgxpool.New(ctx, u+"&pool_max_conns=1")
	require.NoError(t, err)
	defer db.Close()
	client := pgtest.MustClient(t, db, "alter", "")
	s := pgtest.MustSensor(t, db, client, "a1", "key-a1-0123456789abcdef")
	_, err = db.Exec(ctx, `UPDATE sensors SET alert_high = 8 WHERE id = $1`, s)
	require.NoError(t, err)
	store := postgres.NewReadingStore(db)
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	_, err = store.WriteReadings(ctx, []tempwatch.Reading{{SensorID: s, MeasuredAt: t0, Value: 5}})
	require.NoError(t, err)
	_, err = db.Exec(ctx, `ALTER TABLE sensors ALTER COLUMN alarm_hysteresis TYPE numeric`)
	require.NoError(t, err)
	for i := 1; i <= 2; i++ {
		results, err := store.WriteReadings(ctx, []tempwatch.Reading{{SensorID: s, MeasuredAt: t0.Add(time.Duration(i) * time.Minute), Value: 9}})
		require.NoError(t, err, "batch %d after the change", i)
		require.True(t, results[0].Inserted)
	}
	var alarms int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM alarms WHERE sensor_id = $1 AND kind = 'high'`, s).Scan(&alarms))
	require.Equal(t, 1, alarms, "the batches after the change evaluated")
}

// mustSensorAt5 is a sensor with a high limit of 8 and one reading, 5 at
// t0, written by ingest.
func mustSensorAt5(t *testing.T) (*pgxpool.Pool, *postgres.ReadingStore, string, time.Time) {
	t.Helper()
	db := pgtest.MustDB(t)
	client := pgtest.MustClient(t, db, "at5", "")
	s := pgtest.MustSensor(t, db, client, "b1", "key-b1-0123456789abcdef")
	_, err := db.Exec(context.Background(), `UPDATE sensors SET alert_high = 8 WHERE id = $1`, s)
	require.NoError(t, err)
	store := postgres.NewReadingStore(db)
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	_, err = store.WriteReadings(context.Background(), []tempwatch.Reading{{SensorID: s, MeasuredAt: t0, Value: 5}})
	require.NoError(t, err)
	return db, store, s, t0
}

// TestIngestWritesLookUpByKey: the writes after an ingest batch's write
// (the alarm update, the limit-rollup deltas) find their rows by key, not
// by a full scan of alarms or limit_rollups, even on tables that look
// small to the planner, as every table of a new deployment does
// (keyLookupPlansSQL). On one connection, so its statistics can be flushed
// and read back in order; each batch continues the alarm the one before
// opened and clears it, or opens the next, with time beyond the limit. The
// count takes in the reads before the write too (live excursions, newest
// readings), planned as usual: by index on tables never analysed, which
// autovacuum must then leave alone.
func TestIngestWritesLookUpByKey(t *testing.T) {
	ctx := context.Background()
	cfg := pgtest.MustDB(t).Config().Copy()
	cfg.MaxConns = 1
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	_, err = db.Exec(ctx, `ALTER TABLE alarms SET (autovacuum_enabled = off);
		ALTER TABLE limit_rollups SET (autovacuum_enabled = off)`)
	require.NoError(t, err)
	client := pgtest.MustClient(t, db, "keys", "")
	s := mustAlarmSensor(t, db, client, "k1", tempwatch.ExcursionRule{High: fptr(8)}).id
	store := postgres.NewReadingStore(db)
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	write := func(n int) {
		values := []float64{10, 10, 5} // the open alarm continues, then clears
		if n%2 == 0 {
			values = []float64{5, 10, 10} // the next opens
		}
		var rs []tempwatch.Reading
		for i, v := range values {
			rs = append(rs, tempwatch.Reading{SensorID: s, MeasuredAt: t0.Add(time.Duration(3*n+i) * time.Minute), Value: v})
		}
		_, err := store.WriteReadings(ctx, rs)
		require.NoError(t, err)
	}
	type counts struct{ alarmScans, alarmUpdates, rollupScans, rollupWrites int64 }
	read := func() counts {
		_, err := db.Exec(ctx, `SELECT pg_stat_force_next_flush()`) // the connection's counts, shared when it goes idle
		require.NoError(t, err)
		var c counts
		require.NoError(t, db.QueryRow(ctx, `
			SELECT a.seq_scan, a.n_tup_upd, l.seq_scan, l.n_tup_ins + l.n_tup_upd + l.n_tup_del
			FROM pg_stat_user_tables a, pg_stat_user_tables l
			WHERE a.relid = 'alarms'::regclass AND l.relid = 'limit_rollups'::regclass`).
			Scan(&c.alarmScans, &c.alarmUpdates, &c.rollupScans, &c.rollupWrites))
		return c
	}
	const warm = 16 // as planned: without keyLookupPlansSQL, past the five custom plans before a generic one
	for n := range warm {
		write(n)
	}
	before := read()
	for n := warm; n < warm+8; n++ {
		write(n)
	}
	after := read()
	require.Greater(t, after.alarmUpdates, before.alarmUpdates, "alarms updated")
	require.Greater(t, after.rollupWrites, before.rollupWrites, "deltas written")
	assert.Equal(t, before.alarmScans, after.alarmScans, "full scans of alarms")
	assert.Equal(t, before.rollupScans, after.rollupScans, "full scans of limit_rollups")
}
