-- Three costs of an ingest batch's limit rollups, cut: the days of its
-- deltas (010) in one upsert, below; that upsert planned once, not at every
-- call; and the 15-minute rollups' limit trigger stopping at once when it
-- has no sensor to rebuild. And the check that lets ingest send a batch's
-- alarm writes and COMMIT behind its write (ingest_appended, at the end).
--
-- 010's limit_rollups_append_end applied a batch's deltas as an UPDATE, an
-- INSERT and, for buckets left with no time beyond a limit, a DELETE; each
-- fired its statement trigger (011), which planned and ran its own upsert
-- of the days: three per batch, each about as costly as the deltas
-- themselves. The deltas are already one row per sensor and bucket, and
-- what they change in the days is exactly their sum per day (a bucket
-- deleted at 0 and 0 takes nothing away), so append_end now adds them to
-- the days itself, once, and the three triggers stand aside while it
-- writes: a transaction-local setting that append_end alone sets and
-- clears, and only around its own three statements. Every other writer of
-- limit_rollups (the rebuilds, SQL by hand) still goes through the
-- triggers.

CREATE OR REPLACE FUNCTION limit_rollups_to_daily_stmt() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('tempwatch.limit_rollups_days_by_caller', true) = 'on' THEN
        RETURN NULL; -- limit_rollups_append_end adds the days itself
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM limit_rollups_days_add(array_agg(sensor_id), array_agg(bucket_start), array_agg(above_us), array_agg(below_us))
        FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM limit_rollups_days_add(array_agg(sensor_id), array_agg(bucket_start), array_agg(-above_us), array_agg(-below_us))
        FROM old_rows;
    ELSE
        PERFORM limit_rollups_days_add(array_agg(sensor_id), array_agg(bucket_start), array_agg(above_us), array_agg(below_us))
        FROM (SELECT sensor_id, bucket_start, above_us, below_us FROM new_rows
              UNION ALL
              SELECT sensor_id, bucket_start, -above_us, -below_us FROM old_rows) c;
    END IF;
    RETURN NULL;
END $$;

-- 010's limit_rollups_append_end, its days added once. The sensors whose
-- rollups were not exact are rebuilt first, through the triggers, and left
-- out of the deltas and so of the days.
CREATE OR REPLACE FUNCTION limit_rollups_append_end(p_sensors uuid[], p_buckets timestamptz[], p_above bigint[], p_below bigint[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    zs    uuid[];
    zb    timestamptz[];
    bad   uuid[];
    froms timestamptz[];
    tos   timestamptz[];
    ds    uuid[];
    db    timestamptz[];
    da    bigint[];
    dl    bigint[];
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
    IF bad IS NULL THEN
        ds := p_sensors; db := p_buckets; da := p_above; dl := p_below;
    ELSE
        RAISE WARNING 'limit rollups of sensors % were not exact: their spans rebuilt from the readings', bad;
        PERFORM recompute_limit_rollup_spans(bad, froms, tos);
        SELECT array_agg(sensor_id), array_agg(b), array_agg(above_us), array_agg(below_us) INTO ds, db, da, dl
        FROM unnest(p_sensors, p_buckets, p_above, p_below) AS d(sensor_id, b, above_us, below_us)
        WHERE d.sensor_id <> ALL (bad);
        IF ds IS NULL THEN
            RETURN;
        END IF;
    END IF;
    PERFORM set_config('tempwatch.limit_rollups_days_by_caller', 'on', true);
    WITH delta AS (
        SELECT * FROM unnest(ds, db, da, dl) AS d(sensor_id, b, above_us, below_us)
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
    PERFORM set_config('tempwatch.limit_rollups_days_by_caller', '', true);
    PERFORM limit_rollups_days_add(ds, db, da, dl);
END $$;

-- The days' upsert was planned anew at every call: its custom plans,
-- made for arrays of each call's length, looked cheaper than a generic
-- one. They are the same plan (a few index lookups per row), and planning
-- cost twice the upsert itself.
ALTER FUNCTION limit_rollups_days_add(uuid[], timestamptz[], bigint[], bigint[]) SET plan_cache_mode = force_generic_plan;

-- 010's statement trigger of the 15-minute rollups, stopping at once when
-- no sensor the statement changed has a limit but for those begin named
-- (an appending batch's write, or sensors without limits: the usual
-- cases). It planned its whole query over the transition table, anew at
-- every call, twice per batch, only to find nothing to rebuild.
CREATE OR REPLACE FUNCTION reading_rollups_to_limits_stmt() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    appended uuid[] := limit_rollups_appended();
    ids      uuid[];
    froms    timestamptz[];
    tos      timestamptz[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM changed c JOIN sensors s ON s.id = c.sensor_id
                   WHERE (appended IS NULL OR c.sensor_id <> ALL (appended))
                     AND (s.alert_low IS NOT NULL OR s.alert_high IS NOT NULL)) THEN
        RETURN NULL; -- no sensor to rebuild: without limits, or kept by the deltas
    END IF;
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

-- append_end's statements keep generic plans too: the DELETE of emptied
-- buckets was planned anew at every call.
ALTER FUNCTION limit_rollups_append_end(uuid[], timestamptz[], bigint[], bigint[]) SET plan_cache_mode = force_generic_plan;

-- ingest_appended is true, or raises when an ingest batch that its lock
-- found appending to every sensor (tempwatch.ingest_appends_only, set by
-- that lock) inserted fewer readings than it holds: a stored reading came
-- after a sensor's last_measured_at (SQL by hand), so the batch's alarm
-- evaluation, done before the write on that premise, went wrong. The error
-- stops the batch before its COMMIT (it rides the same pipeline); ingest
-- then writes the batch again the general way.
CREATE FUNCTION ingest_appended(p_inserted bigint, p_readings bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_inserted <> p_readings AND current_setting('tempwatch.ingest_appends_only', true) = 'on' THEN
        RAISE EXCEPTION 'an ingest batch that only appends met % stored readings', p_readings - p_inserted
            USING ERRCODE = 'TWA01';
    END IF;
    RETURN true;
END $$;
