-- The limit rollups (007) follow the 15-minute rollups once per statement
-- instead of once per row.
--
-- 007's row trigger rebuilt the span each changed rollup row can reach, one
-- call per sensor and bucket: a batch of 1,000 readings of 50 sensors made
-- about 120 calls, four statements each, and the ingest write ran at 0.61x
-- its rate without limits. Here one trigger per event (INSERT, UPDATE,
-- DELETE: a trigger with transition tables takes one event) hands every
-- changed bucket of the statement to one rebuild: the same spans, merged
-- per sensor where they overlap, rebuilt from the readings in one
-- statement. What a row means is 007's, unchanged.

-- recompute_limit_rollup_spans rebuilds the limit rollups of each sensor
-- p_sensors[i] in [p_froms[i], p_tos[i]) from its readings, as 007's
-- recompute_limit_rollups did for one span. Spans are bucket boundaries or
-- infinite, and a sensor's spans must not overlap.
CREATE FUNCTION recompute_limit_rollup_spans(p_sensors uuid[], p_froms timestamptz[], p_tos timestamptz[]) RETURNS void
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
               value > alert_high AS above
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

-- 007's single-span rebuild (a limit change's, and its backfill's) is the
-- one-span case.
CREATE OR REPLACE FUNCTION recompute_limit_rollups(p_sensor uuid, p_from timestamptz, p_to timestamptz) RETURNS void
LANGUAGE sql AS $$
    SELECT recompute_limit_rollup_spans(ARRAY[p_sensor], ARRAY[p_from], ARRAY[p_to]);
$$;

-- reading_rollups_to_limits_stmt follows a statement's changes of 15-minute
-- rollup rows (the transition table "changed") with the limit rollups of
-- the spans they reach: for a bucket b, from b to the bucket where the next
-- reading after b's end, or b's end plus the silence cap, ends the hold
-- (007's reading_rollups_to_limits). It locks every changed sensor (id
-- order) before it reads their limits, as 007 did: a limit change committed
-- meanwhile is then seen, one under way is waited for. Sensors without
-- limits have no limit rollups and drop out after the lock.
CREATE FUNCTION reading_rollups_to_limits_stmt() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids   uuid[];
    froms timestamptz[];
    tos   timestamptz[];
BEGIN
    PERFORM pg_advisory_xact_lock(limit_rollups_lock(), hashtext(sensor_id::text))
    FROM (SELECT DISTINCT sensor_id FROM changed ORDER BY 1) c;
    WITH bucket AS (
        SELECT DISTINCT c.sensor_id, c.bucket_start AS b, s.silence_after AS hold
        FROM changed c JOIN sensors s ON s.id = c.sensor_id
        WHERE s.alert_low IS NOT NULL OR s.alert_high IS NOT NULL
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

DROP TRIGGER reading_rollups_limits_sync ON reading_rollups;
DROP FUNCTION reading_rollups_to_limits();

CREATE TRIGGER reading_rollups_limits_insert
    AFTER INSERT ON reading_rollups REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION reading_rollups_to_limits_stmt();
CREATE TRIGGER reading_rollups_limits_update
    AFTER UPDATE ON reading_rollups REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION reading_rollups_to_limits_stmt();
CREATE TRIGGER reading_rollups_limits_delete
    AFTER DELETE ON reading_rollups REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION reading_rollups_to_limits_stmt();
