-- Limit rollups of an ingest batch that only appends: deltas, not rebuilds.
--
-- Most batches bring each sensor readings newer than all it has (measured
-- after last_measured_at, the upper bound of its readings' times that every
-- writer keeps). Such a batch changes the holds (007) of its own readings
-- and of one other: the sensor's newest reading before it, which held to
-- the silence cap and now holds only to the batch's first reading. The
-- limit rollups so change by the batch's holds, added, and the rest of that
-- one hold, taken away: a few rows, which ingest computes from the batch it
-- has in hand. 008's rebuild reads the same buckets back from the readings,
-- twice (the upsert of the 15-minute rollups fires both its INSERT and its
-- UPDATE statement triggers), after merging their spans.
--
-- Ingest, holding the sensors' row locks (alarm_eval.go), calls
-- limit_rollups_append_begin before its write: it names the sensors whose
-- batch only appends, whose rollup triggers then leave them out, and
-- returns what the deltas need. After the write, limit_rollups_append_end
-- applies the deltas and forgets the names. The names live in a
-- transaction-local setting that end clears, so nothing else in the
-- transaction is affected; a writer that calls neither (corrections, a
-- build before this migration, SQL by hand) gets 008's rebuild, as before.

-- Every sensor is locked first (id order, as ingest locks them): a batch
-- or a limit change of the build before, under way, commits before the
-- rebuild at the end of this migration reads the readings, and one that
-- starts meanwhile waits for this migration and then runs its rebuild.
-- Ingest and limit changes so wait for as long as this migration runs:
-- the rebuild of the sensors with a low limit only, usually few.
SELECT FROM sensors ORDER BY id FOR NO KEY UPDATE;

-- limit_rollups_appended is the sensors begin named (NULL: none).
CREATE FUNCTION limit_rollups_appended() RETURNS uuid[]
LANGUAGE sql STABLE AS $$
    SELECT string_to_array(nullif(current_setting('tempwatch.limit_rollups_appended', true), ''), ',')::uuid[]
$$;

-- limit_rollups_append_begin names the sensors p_sensors[i] that have a
-- limit and whose batch's first reading p_firsts[i] is after
-- last_measured_at (or that have no reading yet), and returns each one's
-- silence cap (the longest hold) and newest reading. The caller holds
-- their row locks, so neither changes until its transaction ends. A cap
-- with days or months (set by hand: the API sets seconds) is left to the
-- rebuild: SQL adds it by the calendar, the deltas by its length.
CREATE FUNCTION limit_rollups_append_begin(p_sensors uuid[], p_firsts timestamptz[])
RETURNS TABLE (sensor_id uuid, hold_us bigint, last_at timestamptz, last_value double precision)
LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[];
BEGIN
    SELECT array_agg(s.id ORDER BY s.id) INTO ids
    FROM unnest(p_sensors, p_firsts) AS b(id, first_at) JOIN sensors s ON s.id = b.id
    WHERE (s.alert_low IS NOT NULL OR s.alert_high IS NOT NULL)
      AND (s.last_measured_at IS NULL OR b.first_at > s.last_measured_at)
      AND extract(month FROM s.silence_after) = 0 AND extract(day FROM s.silence_after) = 0
      AND extract(year FROM s.silence_after) = 0;
    PERFORM set_config('tempwatch.limit_rollups_appended', coalesce(array_to_string(ids, ','), ''), true);
    RETURN QUERY
        SELECT s.id, (extract(epoch FROM s.silence_after) * 1000000)::bigint, p.measured_at, p.value
        FROM sensors s
        LEFT JOIN LATERAL (
            SELECT r.measured_at, r.value FROM readings r
            WHERE r.sensor_id = s.id AND r.measured_at <= s.last_measured_at
            ORDER BY r.measured_at DESC LIMIT 1
        ) p ON true
        WHERE s.id = ANY (ids);
END $$;

-- limit_rollups_append_end adds each delta (p_above[i], p_below[i]
-- microseconds, either may be negative) to the limit rollup of sensor
-- p_sensors[i] and bucket p_buckets[i], one row per (sensor, bucket), of
-- the sensors begin named; drops buckets left with no time beyond a limit;
-- and forgets the names. A sensor whose deltas would leave a bucket below
-- zero had stored rows that were not exact (written by hand, or by a fault
-- of an earlier build): its span of the deltas is rebuilt from the readings
-- instead, with a warning in the server's log, and the batch goes on.
CREATE FUNCTION limit_rollups_append_end(p_sensors uuid[], p_buckets timestamptz[], p_above bigint[], p_below bigint[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    zs    uuid[];
    zb    timestamptz[];
    bad   uuid[];
    froms timestamptz[];
    tos   timestamptz[];
BEGIN
    PERFORM set_config('tempwatch.limit_rollups_appended', '', true);
    IF cardinality(p_sensors) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(limit_rollups_lock(), hashtext(id::text))
    FROM (SELECT DISTINCT id FROM unnest(p_sensors) AS id ORDER BY 1) s;
    SELECT array_agg(sensor_id ORDER BY sensor_id), array_agg(from_at ORDER BY sensor_id), array_agg(to_at ORDER BY sensor_id)
    INTO bad, froms, tos
    FROM (
        SELECT d.sensor_id, min(d.b) AS from_at, max(d.b) + interval '15 minutes' AS to_at
        FROM unnest(p_sensors, p_buckets, p_above, p_below) AS d(sensor_id, b, above_us, below_us)
        LEFT JOIN limit_rollups l ON l.sensor_id = d.sensor_id AND l.bucket_start = d.b
        GROUP BY d.sensor_id
        HAVING bool_or(coalesce(l.above_us, 0) + d.above_us < 0 OR coalesce(l.below_us, 0) + d.below_us < 0)
    ) x;
    IF bad IS NOT NULL THEN
        RAISE WARNING 'limit rollups of sensors % were not exact: their spans rebuilt from the readings', bad;
        PERFORM recompute_limit_rollup_spans(bad, froms, tos);
    END IF;
    WITH delta AS (
        SELECT * FROM unnest(p_sensors, p_buckets, p_above, p_below) AS d(sensor_id, b, above_us, below_us)
        WHERE bad IS NULL OR d.sensor_id <> ALL (bad)
    ), updated AS (
        UPDATE limit_rollups l SET above_us = l.above_us + d.above_us, below_us = l.below_us + d.below_us
        FROM delta d WHERE l.sensor_id = d.sensor_id AND l.bucket_start = d.b
        RETURNING l.sensor_id, l.bucket_start, l.above_us, l.below_us
    ), inserted AS (
        -- Not an upsert: its proposed row, were the delta negative, would
        -- fail the table's CHECK before the conflict is found. No other
        -- writer adds these sensors' rows meanwhile (the advisory lock).
        INSERT INTO limit_rollups (sensor_id, bucket_start, above_us, below_us)
        SELECT sensor_id, b, above_us, below_us FROM delta d
        WHERE NOT EXISTS (SELECT 1 FROM limit_rollups l WHERE l.sensor_id = d.sensor_id AND l.bucket_start = d.b)
        ORDER BY sensor_id, b
    )
    SELECT array_agg(sensor_id), array_agg(bucket_start) INTO zs, zb FROM updated WHERE above_us = 0 AND below_us = 0;
    IF zs IS NOT NULL THEN
        DELETE FROM limit_rollups l USING unnest(zs, zb) AS z(sensor_id, bucket_start)
        WHERE l.sensor_id = z.sensor_id AND l.bucket_start = z.bucket_start;
    END IF;
END $$;

-- 008's statement trigger, leaving out the sensors begin named.
CREATE OR REPLACE FUNCTION reading_rollups_to_limits_stmt() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    appended uuid[] := limit_rollups_appended();
    ids      uuid[];
    froms    timestamptz[];
    tos      timestamptz[];
BEGIN
    PERFORM pg_advisory_xact_lock(limit_rollups_lock(), hashtext(sensor_id::text))
    FROM (SELECT DISTINCT sensor_id FROM changed WHERE appended IS NULL OR sensor_id <> ALL (appended) ORDER BY 1) c;
    WITH bucket AS (
        SELECT DISTINCT c.sensor_id, c.bucket_start AS b, s.silence_after AS hold
        FROM changed c JOIN sensors s ON s.id = c.sensor_id
        WHERE (s.alert_low IS NOT NULL OR s.alert_high IS NOT NULL)
          AND (appended IS NULL OR c.sensor_id <> ALL (appended))
    ), reach AS (
        SELECT sensor_id, b AS from_at,
               rollup_bucket(least(
                   (SELECT n.measured_at FROM readings n
                    WHERE n.sensor_id = bucket.sensor_id AND n.measured_at >= b + interval '15 minutes'
                    ORDER BY n.measured_at LIMIT 1),
                   b + interval '15 minutes' + hold) - interval '1 microsecond') + interval '15 minutes' AS to_at
        FROM bucket
    ), marked AS (
        SELECT *, CASE WHEN from_at <= max(to_at) OVER (PARTITION BY sensor_id ORDER BY from_at, to_at
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS starts
        FROM reach
    ), island AS (
        SELECT *, sum(starts) OVER (PARTITION BY sensor_id ORDER BY from_at, to_at) AS n FROM marked
    ), merged AS (
        SELECT sensor_id, min(from_at) AS from_at, max(to_at) AS to_at FROM island GROUP BY sensor_id, n
    )
    SELECT array_agg(sensor_id ORDER BY sensor_id, from_at), array_agg(from_at ORDER BY sensor_id, from_at),
           array_agg(to_at ORDER BY sensor_id, from_at)
    INTO ids, froms, tos
    FROM merged;
    IF ids IS NOT NULL THEN
        PERFORM recompute_limit_rollup_spans(ids, froms, tos);
    END IF;
    RETURN NULL;
END $$;

-- 008's rebuild lost the time below the low limit of a sensor without a
-- high limit: "value > alert_high" is NULL there, and a NULL "above" is in
-- neither sum, so its buckets held 0 and 0 (since 007). The same rebuild,
-- "above" false without a high limit; then the rebuild of every such
-- sensor's history.
CREATE OR REPLACE FUNCTION recompute_limit_rollup_spans(p_sensors uuid[], p_froms timestamptz[], p_tos timestamptz[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH span AS (
        SELECT t.sensor_id, t.from_at, t.to_at, s.alert_low, s.alert_high, s.silence_after
        FROM unnest(p_sensors, p_froms, p_tos) AS t(sensor_id, from_at, to_at)
        JOIN sensors s ON s.id = t.sensor_id
        -- A span with no time beyond a limit before or after is left alone:
        -- none of its buckets has a limit rollup, none of its 15-minute
        -- rollups has a value beyond a limit, nor has the reading before
        -- it (whose hold may reach in). Most spans of a sensor inside its
        -- range are so decided from a few rollup rows, not its readings.
        WHERE EXISTS (SELECT 1 FROM limit_rollups l
                      WHERE l.sensor_id = t.sensor_id AND l.bucket_start >= t.from_at AND l.bucket_start < t.to_at)
           OR EXISTS (SELECT 1 FROM reading_rollups r
                      WHERE r.sensor_id = t.sensor_id AND r.bucket_start >= t.from_at AND r.bucket_start < t.to_at
                        AND (r.min < s.alert_low OR r.max > s.alert_high))
           OR EXISTS (SELECT 1 FROM (SELECT p.value FROM readings p
                                     WHERE p.sensor_id = t.sensor_id AND p.measured_at < t.from_at
                                     ORDER BY p.measured_at DESC LIMIT 1) p
                      WHERE p.value < s.alert_low OR p.value > s.alert_high)
    ), r AS (
        SELECT sp.*, x.measured_at, x.value, x.next_at
        FROM span sp CROSS JOIN LATERAL (
            SELECT measured_at, value, lead(measured_at) OVER (ORDER BY measured_at) AS next_at
            FROM readings WHERE sensor_id = sp.sensor_id AND measured_at >= sp.from_at AND measured_at < sp.to_at
        ) x
        UNION ALL
        SELECT sp.*, p.measured_at, p.value,
               (SELECT n.measured_at FROM readings n
                WHERE n.sensor_id = sp.sensor_id AND n.measured_at >= sp.from_at ORDER BY n.measured_at LIMIT 1)
        FROM span sp CROSS JOIN LATERAL (
            SELECT measured_at, value FROM readings
            WHERE sensor_id = sp.sensor_id AND measured_at < sp.from_at ORDER BY measured_at DESC LIMIT 1
        ) p
    ), held AS (
        SELECT sensor_id,
               date_bin('15 minutes', greatest(measured_at, from_at), timestamptz 'epoch') AS b1,
               greatest(measured_at, from_at) AS from_at,
               least(next_at, measured_at + silence_after, to_at) AS to_at,
               coalesce(value > alert_high, false) AS above
        FROM r
        WHERE (value > alert_high OR value < alert_low)
          AND least(next_at, measured_at + silence_after, to_at) > greatest(measured_at, from_at)
    ), split AS (
        SELECT sensor_id, b1 AS b, above, to_at - from_at AS d FROM held WHERE to_at <= b1 + interval '15 minutes'
        UNION ALL
        SELECT sensor_id, b, above, least(to_at, b + interval '15 minutes') - greatest(from_at, b)
        FROM held, generate_series(b1, to_at - interval '1 microsecond', interval '15 minutes') AS b
        WHERE to_at > b1 + interval '15 minutes'
    ), fresh AS (
        SELECT sensor_id, b,
               (extract(epoch FROM coalesce(sum(d) FILTER (WHERE above), '0')) * 1000000)::bigint AS above_us,
               (extract(epoch FROM coalesce(sum(d) FILTER (WHERE NOT above), '0')) * 1000000)::bigint AS below_us
        FROM split GROUP BY sensor_id, b
    ), gone AS (
        DELETE FROM limit_rollups l
        USING unnest(p_sensors, p_froms, p_tos) AS t(sensor_id, from_at, to_at)
        WHERE l.sensor_id = t.sensor_id AND l.bucket_start >= t.from_at AND l.bucket_start < t.to_at
          AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.sensor_id = l.sensor_id AND f.b = l.bucket_start)
    )
    INSERT INTO limit_rollups AS l (sensor_id, bucket_start, above_us, below_us)
    SELECT sensor_id, b, above_us, below_us FROM fresh ORDER BY sensor_id, b
    ON CONFLICT (sensor_id, bucket_start) DO UPDATE SET above_us = excluded.above_us, below_us = excluded.below_us
    WHERE (l.above_us, l.below_us) IS DISTINCT FROM (excluded.above_us, excluded.below_us);
END $$;

SELECT recompute_limit_rollups(id, '-infinity', 'infinity')
FROM sensors WHERE alert_low IS NOT NULL AND alert_high IS NULL;
