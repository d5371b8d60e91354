-- The days of the limit rollups (007's limit_rollups_daily) once per
-- statement instead of once per changed bucket.
--
-- 007's row trigger looked up the sensor's zones and upserted one day row
-- per zone for every changed bucket: a batch's deltas (010) changing eight
-- buckets made sixteen upserts, and a limit change rebuilding a sensor-year
-- (20,000 buckets with time beyond a limit) made 20,000 per zone. Here one
-- trigger per event sums the statement's changes per sensor, zone and day
-- (new rows added, old rows taken away) and upserts each day once, in key
-- order. What a row means is 007's, unchanged.

-- limit_rollups_days_add adds changes of limit rollups (sensor p_sensors[i],
-- bucket p_buckets[i], microseconds p_above[i] and p_below[i], either may
-- be negative) to their days in every zone the sensor's days are kept in.
-- PL/pgSQL, not SQL: it keeps the statement's plan for the session.
CREATE FUNCTION limit_rollups_days_add(p_sensors uuid[], p_buckets timestamptz[], p_above bigint[], p_below bigint[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO limit_rollups_daily AS t (sensor_id, timezone, day, above_us, below_us)
    SELECT c.sensor_id, z.tz, (c.bucket_start AT TIME ZONE z.tz)::date, sum(c.above_us), sum(c.below_us)
    FROM unnest(p_sensors, p_buckets, p_above, p_below) AS c(sensor_id, bucket_start, above_us, below_us)
    JOIN sensors s ON s.id = c.sensor_id
    CROSS JOIN LATERAL (SELECT timezone FROM clients WHERE id = s.client_id
                        UNION ALL SELECT timezone FROM rollup_zones WHERE client_id = s.client_id) z(tz)
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (sensor_id, timezone, day) DO UPDATE SET
        above_us = t.above_us + excluded.above_us, below_us = t.below_us + excluded.below_us;
END $$;

-- limit_rollups_to_daily_stmt hands a statement's changed rows to
-- limit_rollups_days_add: new rows added, old rows taken away. Each branch
-- reads only the transition tables its event has.
CREATE FUNCTION limit_rollups_to_daily_stmt() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
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

DROP TRIGGER limit_rollups_daily_sync ON limit_rollups;
DROP FUNCTION limit_rollups_to_daily();

CREATE TRIGGER limit_rollups_daily_insert
    AFTER INSERT ON limit_rollups REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION limit_rollups_to_daily_stmt();
CREATE TRIGGER limit_rollups_daily_update
    AFTER UPDATE ON limit_rollups REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION limit_rollups_to_daily_stmt();
CREATE TRIGGER limit_rollups_daily_delete
    AFTER DELETE ON limit_rollups REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION limit_rollups_to_daily_stmt();
