package postgres

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The limit rollups of an ingest batch that only appends to a sensor's
// readings are kept by deltas the write computes (migration 010): the
// batch's holds beyond a limit, added, and the rest of the hold of the
// sensor's newest reading before the batch, taken away. What a hold is,
// migration 007 says: a reading holds its value until the sensor's next
// reading, at most the silence cap, split at 15-minute buckets.

// rollupBucket is the span of a 15-minute rollup (rollup_bucket in SQL).
// Truncate counts from year 1, a multiple of 15 minutes before the Unix
// epoch, so its buckets are SQL's.
const rollupBucket = 15 * time.Minute

// limitAppend is what the deltas need of a sensor whose batch only
// appends: its silence cap and its newest reading, if that reading's
// time beyond a limit may reach into the batch (appendingNewestSQL).
type limitAppend struct {
	hold time.Duration
	last *tempwatch.Sample
}

// lockIngestSensorsSQL is an ingest batch's lock of its sensors $1
// (lockAlarmSensorsSQL's, its columns first), which also names, as
// migration 010's limit_rollups_append_begin does (this build no longer
// calls it; the build before does, during a deploy), the sensors whose batch
// only appends (their first readings $2): they have a limit, the batch's
// first reading is after last_measured_at (or they have none yet), and
// their silence cap has no days or months (set by hand: SQL adds those by
// the calendar, the deltas by their length). Of each it returns whether it
// appends and its cap. The naming reads the rows as locked (a batch that
// held a lock before commits its last_measured_at first).
//
// When $4 is false it names none: every sensor's limit rollups are then
// rebuilt by the write's triggers (after deltas found them inexact).
//
// When $3 and every sensor of the batch has its readings all after its
// newest (or none yet: onlyAppends in Go, from the same rows), it also
// sets tempwatch.ingest_appends_only, which appendReadingsSQL checks.
const lockIngestSensorsSQL = `
WITH locked AS MATERIALIZED (
	SELECT id, client_id, alert_low, alert_high, alarm_delay, alarm_hysteresis, last_measured_at, silence_after
	FROM sensors WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE
), appending AS MATERIALIZED (
	SELECT l.id FROM locked l JOIN unnest($1::uuid[], $2::timestamptz[]) AS b(id, first_at) ON b.id = l.id
	WHERE $4 AND (l.alert_low IS NOT NULL OR l.alert_high IS NOT NULL)
	  AND (l.last_measured_at IS NULL OR b.first_at > l.last_measured_at)
	  AND extract(month FROM l.silence_after) = 0 AND extract(day FROM l.silence_after) = 0
	  AND extract(year FROM l.silence_after) = 0
), named AS MATERIALIZED (
	SELECT set_config('tempwatch.limit_rollups_appended', coalesce(string_agg(id::text, ','), ''), true) FROM appending
), only_appends AS MATERIALIZED (
	SELECT set_config('tempwatch.ingest_appends_only', CASE WHEN $3 AND count(*) = cardinality($1::uuid[]) THEN 'on' ELSE '' END, true)
	FROM locked l JOIN unnest($1::uuid[], $2::timestamptz[]) AS b(id, first_at) ON b.id = l.id
	WHERE l.last_measured_at IS NULL OR b.first_at > l.last_measured_at
)
SELECT l.id, l.client_id, l.alert_low, l.alert_high, (extract(epoch FROM l.alarm_delay) * 1000000)::bigint,
	l.alarm_hysteresis, l.last_measured_at, a.id IS NOT NULL, (extract(epoch FROM l.silence_after) * 1000000)::bigint
FROM named CROSS JOIN only_appends CROSS JOIN locked l LEFT JOIN appending a ON a.id = l.id
ORDER BY l.id`

// appendingNewestSQL reads the newest reading of each sensor the lock
// named whose batch ($1, the bucket of its first reading $2) takes some of
// that reading's hold away, before the batch's write. That hold reaches
// into the batch's first bucket only if the reading was beyond a limit;
// there it left time beyond the limit, so the bucket has a limit rollup.
// A sensor whose first bucket has none needs no reading (usually most).
// The check is in the lateral subquery, whose LIMIT keeps it there: one
// primary-key lookup per sensor (as a semi-join of its own, it was planned
// over all of a sensor's limit rollups, a cost that grew with its
// history). A statement of its own: the lock's snapshot was taken before
// its wait, and would miss the readings of the batch it waited for.
const appendingNewestSQL = `
SELECT b.id, p.measured_at, p.value
FROM unnest(limit_rollups_appended()) AS n(id)
JOIN unnest($1::uuid[], $2::timestamptz[]) AS b(id, bucket) ON b.id = n.id
CROSS JOIN LATERAL (
	SELECT r.measured_at, r.value FROM readings r
	WHERE r.sensor_id = b.id
	  AND EXISTS (SELECT 1 FROM limit_rollups l WHERE l.sensor_id = b.id AND l.bucket_start = b.bucket)
	ORDER BY r.measured_at DESC LIMIT 1
) p`

// queueIngestState queues on b what queueAlarmState does for the sensors
// of batch a, its lock naming the sensors whose batch only appends, whose
// limit rollups the write's triggers then leave to the deltas
// (limitDeltas.queue), and the read of their newest readings. The
// appending sensors, by id, are filled when b's results are read.
func queueIngestState(b *pgx.Batch, a *batchArrays, appending, deltas bool, st *alarmState) map[string]*limitAppend {
	st.sensors = make(map[string]*alarmSensor, len(a.sensorIDs))
	appends := map[string]*limitAppend{}
	b.Queue(lockIngestSensorsSQL, a.sensorKeys, a.firsts, appending, deltas).Query(func(rows pgx.Rows) error {
		var appending bool
		var holdMicros int64
		return st.scanSensors(rows, func(s *alarmSensor) {
			if appending {
				appends[s.id] = &limitAppend{hold: time.Duration(holdMicros) * time.Microsecond}
			}
		}, &appending, &holdMicros)
	})
	firstBuckets := make([]time.Time, len(a.firsts))
	for i, t := range a.firsts {
		firstBuckets[i] = t.Truncate(rollupBucket)
	}
	b.Queue(appendingNewestSQL, a.sensorKeys, firstBuckets).Query(func(rows pgx.Rows) error {
		var id string
		var last tempwatch.Sample
		_, err := pgx.ForEachRow(rows, []any{&id, &last.At, &last.Value}, func() error {
			if la := appends[id]; la != nil {
				la.last = &tempwatch.Sample{At: last.At, Value: last.Value}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read newest readings: %w", err)
		}
		return nil
	})
	queueLiveExcursions(b, a.sensorIDs, st)
	return appends
}

// limitDeltas are changes of limit rollups by sensor and bucket.
type limitDeltas map[limitBucket]*limitDelta

type limitBucket struct {
	sensor string
	start  int64 // Unix microseconds
}

type limitDelta struct{ above, below int64 } // microseconds

// addBatch adds what the batch of s (its readings by time, all after a.last)
// changes in its limit rollups.
func (d limitDeltas) addBatch(s *alarmSensor, a *limitAppend, batch []tempwatch.Sample) {
	if len(batch) == 0 {
		return
	}
	first := batch[0].At.Truncate(time.Microsecond) // as PostgreSQL stores it
	if a.last != nil {
		if end := a.last.At.Add(a.hold); first.Before(end) {
			d.addHold(s, a.last.Value, first, end, -1)
		}
	}
	for i, x := range batch {
		from := x.At.Truncate(time.Microsecond)
		to := from.Add(a.hold)
		if i+1 < len(batch) {
			if next := batch[i+1].At.Truncate(time.Microsecond); next.Before(to) {
				to = next
			}
		}
		d.addHold(s, x.Value, from, to, 1)
	}
}

// addHold adds sign times the hold [from, to) of value v, if v is beyond a
// limit of s (above the high limit first, as SQL decides), split at buckets.
func (d limitDeltas) addHold(s *alarmSensor, v float64, from, to time.Time, sign int64) {
	above := s.rule.High != nil && v > *s.rule.High
	if !above && (s.rule.Low == nil || v >= *s.rule.Low) {
		return
	}
	for b := from.Truncate(rollupBucket); b.Before(to); b = b.Add(rollupBucket) {
		lo, hi := from, to
		if b.After(lo) {
			lo = b
		}
		if end := b.Add(rollupBucket); end.Before(hi) {
			hi = end
		}
		k := limitBucket{s.id, b.UnixMicro()}
		x := d[k]
		if x == nil {
			x = &limitDelta{}
			d[k] = x
		}
		if above {
			x.above += sign * hi.Sub(lo).Microseconds()
		} else {
			x.below += sign * hi.Sub(lo).Microseconds()
		}
	}
}

// The deltas' write (limitDeltas.queue) is two statements in a row.
// Migration 010's limit_rollups_append_end (012's version, which the build
// before calls during a deploy) did the same in PL/pgSQL, and checked the
// deltas against the stored rows first: that took twice as long.
//
// deltasBeginSQL takes the advisory locks of the sensors $1 (every writer
// of their limit rollups takes them: SQL by hand on readings locks no
// sensor row), ends the naming of the appending sensors (the lock's), and
// tells the day triggers of limit_rollups to stand aside: deltasSQL adds
// the days itself. The deltas come last before COMMIT, so the setting is
// left on to the end of the transaction (migration 012's comments, of
// append_end, say it is on only around its own statements). deltasSQL is
// planned as the rest of the batch's writes are (keyLookupPlansSQL). A
// statement of its own: deltasSQL's snapshot must come after the locks,
// or it could miss a rebuild committed while it waited.
const deltasBeginSQL = `
SELECT set_config('tempwatch.limit_rollups_appended', '', true),
	set_config('tempwatch.limit_rollups_days_by_caller', 'on', true),
	(SELECT count(pg_advisory_xact_lock(limit_rollups_lock(), hashtext(id::text)))
	 FROM (SELECT DISTINCT id FROM unnest($1::uuid[]) AS id ORDER BY 1) s)`

// deltasSQL adds the deltas $1-$4, one per sensor and bucket, to the limit
// rollups (a MERGE: one lookup of each bucket, which the delta empties,
// changes or creates) and to their days. A delta that would take a bucket
// below zero fails the table's CHECK (limitRollupsInexact): the stored rows
// were not what the readings say, and the batch is written again, its limit
// rollups rebuilt from the readings.
const deltasSQL = `
WITH delta AS (
	SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::bigint[], $4::bigint[]) AS d(sensor_id, b, above_us, below_us)
), days AS (
	INSERT INTO limit_rollups_daily AS t (sensor_id, timezone, day, above_us, below_us)
	SELECT d.sensor_id, z.tz, (d.b AT TIME ZONE z.tz)::date, sum(d.above_us), sum(d.below_us)
	FROM delta d
	JOIN sensors s ON s.id = d.sensor_id
	CROSS JOIN LATERAL (SELECT timezone FROM clients WHERE id = s.client_id
	                    UNION ALL SELECT timezone FROM rollup_zones WHERE client_id = s.client_id) z(tz)
	GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
	ON CONFLICT (sensor_id, timezone, day) DO UPDATE SET
		above_us = t.above_us + excluded.above_us, below_us = t.below_us + excluded.below_us
)
MERGE INTO limit_rollups l
USING delta d ON l.sensor_id = d.sensor_id AND l.bucket_start = d.b
WHEN MATCHED AND l.above_us + d.above_us = 0 AND l.below_us + d.below_us = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET above_us = l.above_us + d.above_us, below_us = l.below_us + d.below_us
WHEN NOT MATCHED THEN INSERT (sensor_id, bucket_start, above_us, below_us) VALUES (d.sensor_id, d.b, d.above_us, d.below_us)`

// limitRollupsInexact tells deltasSQL's refusal of a delta that would take
// a limit rollup below zero.
func limitRollupsInexact(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && pgErr.TableName == "limit_rollups"
}

// queue queues on b the deltas' write, which also ends the naming of the
// appending sensors: it must follow every queueIngestState and
// keyLookupPlansSQL (its plan), and only COMMIT may follow it. Without
// deltas (every appending sensor inside its limits, the usual batch) it
// queues nothing and the naming lasts to the end of the transaction, as
// the deltas' settings do.
func (d limitDeltas) queue(b *pgx.Batch) {
	keys := make([]limitBucket, 0, len(d))
	for k, x := range d {
		if *x != (limitDelta{}) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return
	}
	slices.SortFunc(keys, func(a, b limitBucket) int {
		return cmp.Or(strings.Compare(a.sensor, b.sensor), cmp.Compare(a.start, b.start))
	})
	sensors, starts := make([]string, len(keys)), make([]time.Time, len(keys))
	above, below := make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		sensors[i], starts[i] = k.sensor, time.UnixMicro(k.start)
		above[i], below[i] = d[k].above, d[k].below
	}
	ids := binaryUUIDs(sensors)
	b.Queue(deltasBeginSQL, ids)
	b.Queue(deltasSQL, ids, starts, above, below)
}
