-- Time beyond the limits and mean kinetic temperature in the daily rollups.
--
-- Mean kinetic temperature (USP <1079>) over n equally spaced readings is
-- (dH/R) / -ln(sum(exp(-dH/(R*T))) / n), T in kelvin. The sum is additive,
-- so it is kept beside count in every rollup (mkt_sum), each term scaled by
-- exp(dH/(R*T0)) at T0 = 0 degrees Celsius so that terms are near 1 instead
-- of near the bottom of the double range; mkt_celsius undoes the scaling.
-- NULL means unknown (a row written by a build before this migration, while
-- a deploy was under way) and stays NULL when summed.
--
-- Time beyond a limit is time-weighted: a reading holds its value from its
-- measured time until the sensor's next reading, but never longer than the
-- sensor's silence_after (a silence counts as neither above nor below). A
-- hold is split at 15-minute bucket boundaries and summed per bucket in
-- limit_rollups (microseconds above alert_high, below alert_low; buckets
-- with neither have no row), and per local day in every zone the daily
-- rollups are kept in (limit_rollups_daily). Limits are the sensor's
-- current ones: changing alert_low, alert_high or silence_after recomputes
-- the sensor's whole history.
--
-- A reading written, corrected or deleted at t changes holds only in
-- [t, t + silence_after), and only up to the next reading: its own hold and
-- the rest of its predecessor's. So every change of a 15-minute rollup row
-- (which every writer makes, see the baseline migration) recomputes the
-- buckets from its own to the one where the next reading after it, or the
-- silence cap, ends that span. Writers of one sensor's limit rollups are
-- serialised by a transaction-scoped advisory lock on the sensor, taken
-- after the writer's rollup rows (ingest and corrections both lock those
-- first), then every bucket is rebuilt from the readings as committed.

-- mkt_dh_over_r is dH/R in kelvin: dH = 83.144 kJ/mol, USP's default.
CREATE FUNCTION mkt_dh_over_r() RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 83144.0 / 8.3144598 $$;

-- mkt_term is one reading's scaled term. Temperatures within a few kelvin
-- of absolute zero are clamped, so exp cannot underflow into an error.
CREATE FUNCTION mkt_term(v double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT exp(mkt_dh_over_r() / 273.15 - mkt_dh_over_r() / greatest(v + 273.15, 20))
$$;

-- mkt_celsius is the mean kinetic temperature of n readings whose terms sum to s.
CREATE FUNCTION mkt_celsius(s double precision, n bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT mkt_dh_over_r() / (mkt_dh_over_r() / 273.15 - ln(s / n)) - 273.15 WHERE n > 0 AND s > 0
$$;

ALTER TABLE reading_rollups ADD COLUMN mkt_sum double precision;
ALTER TABLE reading_rollups_daily ADD COLUMN mkt_sum double precision;

-- The daily reads answer from the index alone; mkt_sum joins what it covers.
CREATE INDEX reading_rollups_daily_covering_mkt ON reading_rollups_daily (sensor_id, timezone, day DESC)
    INCLUDE (count, sum, min, max, first_at, last_at, mkt_sum);
DROP INDEX reading_rollups_daily_covering;

-- Rollups kept before this migration get their terms from the readings.
ALTER TABLE reading_rollups DISABLE TRIGGER reading_rollups_daily_sync;
UPDATE reading_rollups r SET mkt_sum = m.s
FROM (SELECT sensor_id, rollup_bucket(measured_at) AS b, sum(mkt_term(value)) AS s FROM readings GROUP BY 1, 2) m
WHERE r.sensor_id = m.sensor_id AND r.bucket_start = m.b;
ALTER TABLE reading_rollups ENABLE TRIGGER reading_rollups_daily_sync;
UPDATE reading_rollups_daily d SET mkt_sum = (
    SELECT sum(r.mkt_sum) FROM reading_rollups r
    WHERE r.sensor_id = d.sensor_id
      AND r.bucket_start >= (d.day::timestamp AT TIME ZONE d.timezone)
      AND r.bucket_start < ((d.day + 1)::timestamp AT TIME ZONE d.timezone));

-- mkt_sum_known sums mkt_sums, NULL if any is unknown.
CREATE FUNCTION mkt_sum_known(s double precision[]) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN array_position(s, NULL) IS NULL THEN (SELECT sum(x) FROM unnest(s) AS x) END
$$;

CREATE OR REPLACE FUNCTION recompute_rollup(p_sensor uuid, p_bucket timestamptz) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM reading_rollups WHERE sensor_id = p_sensor AND bucket_start = p_bucket;
    INSERT INTO reading_rollups (sensor_id, bucket_start, count, sum, min, max, first_at, last_at, mkt_sum)
    SELECT p_sensor, p_bucket, count(*), sum(value), min(value), max(value), min(measured_at), max(measured_at), sum(mkt_term(value))
    FROM readings
    WHERE sensor_id = p_sensor AND measured_at >= p_bucket AND measured_at < p_bucket + interval '15 minutes'
    HAVING count(*) > 0;
$$;

CREATE OR REPLACE FUNCTION recompute_rollup_day(p_sensor uuid, p_tz text, p_day date) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM reading_rollups_daily WHERE sensor_id = p_sensor AND timezone = p_tz AND day = p_day;
    INSERT INTO reading_rollups_daily (sensor_id, timezone, day, count, sum, min, max, first_at, last_at, mkt_sum)
    SELECT p_sensor, p_tz, p_day, sum(count), sum(sum), min(min), max(max), min(first_at), max(last_at), mkt_sum_known(array_agg(mkt_sum))
    FROM reading_rollups
    WHERE sensor_id = p_sensor
      AND bucket_start >= (p_day::timestamp AT TIME ZONE p_tz)
      AND bucket_start < ((p_day + 1)::timestamp AT TIME ZONE p_tz)
    HAVING count(*) > 0;
$$;

-- The baseline's trigger, carrying mkt_sum in its deltas.
CREATE OR REPLACE FUNCTION reading_rollups_to_daily() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text;
    d  date;
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (
        NEW.count < OLD.count OR NEW.min > OLD.min OR NEW.max < OLD.max
        OR NEW.first_at > OLD.first_at OR NEW.last_at < OLD.last_at)) THEN
        FOR tz IN SELECT c.timezone FROM sensors s JOIN clients c ON c.id = s.client_id WHERE s.id = OLD.sensor_id
            UNION ALL
            SELECT z.timezone FROM sensors s JOIN rollup_zones z ON z.client_id = s.client_id WHERE s.id = OLD.sensor_id LOOP
            PERFORM recompute_rollup_day(OLD.sensor_id, tz, (OLD.bucket_start AT TIME ZONE tz)::date);
        END LOOP;
        RETURN NULL;
    END IF;
    FOR tz IN SELECT c.timezone FROM sensors s JOIN clients c ON c.id = s.client_id WHERE s.id = NEW.sensor_id
            UNION ALL
            SELECT z.timezone FROM sensors s JOIN rollup_zones z ON z.client_id = s.client_id WHERE s.id = NEW.sensor_id LOOP
        d := (NEW.bucket_start AT TIME ZONE tz)::date;
        IF TG_OP = 'UPDATE' THEN
            INSERT INTO reading_rollups_daily AS t (sensor_id, timezone, day, count, sum, min, max, first_at, last_at, mkt_sum)
            VALUES (NEW.sensor_id, tz, d, NEW.count - OLD.count, NEW.sum - OLD.sum, NEW.min, NEW.max, NEW.first_at, NEW.last_at,
                    NEW.mkt_sum - OLD.mkt_sum)
            ON CONFLICT (sensor_id, timezone, day) DO UPDATE SET
                count = t.count + excluded.count, sum = t.sum + excluded.sum,
                min = least(t.min, excluded.min), max = greatest(t.max, excluded.max),
                first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at),
                mkt_sum = t.mkt_sum + excluded.mkt_sum;
        ELSE
            INSERT INTO reading_rollups_daily AS t (sensor_id, timezone, day, count, sum, min, max, first_at, last_at, mkt_sum)
            VALUES (NEW.sensor_id, tz, d, NEW.count, NEW.sum, NEW.min, NEW.max, NEW.first_at, NEW.last_at, NEW.mkt_sum)
            ON CONFLICT (sensor_id, timezone, day) DO UPDATE SET
                count = t.count + excluded.count, sum = t.sum + excluded.sum,
                min = least(t.min, excluded.min), max = greatest(t.max, excluded.max),
                first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at),
                mkt_sum = t.mkt_sum + excluded.mkt_sum;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TABLE limit_rollups (
    sensor_id     uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    bucket_start  timestamptz NOT NULL,
    above_us      bigint NOT NULL CHECK (above_us >= 0),
    below_us      bigint NOT NULL CHECK (below_us >= 0),
    PRIMARY KEY (sensor_id, bucket_start)
);

-- Days of limit_rollups per zone, kept by deltas (exact: integers). The
-- daily reads join one row per day from the index alone.
CREATE TABLE limit_rollups_daily (
    sensor_id  uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    timezone   text NOT NULL,
    day        date NOT NULL,
    above_us   bigint NOT NULL,
    below_us   bigint NOT NULL,
    PRIMARY KEY (sensor_id, timezone, day) INCLUDE (above_us, below_us)
);

-- limit_rollups_lock is the advisory lock class of a sensor's limit rollups.
CREATE FUNCTION limit_rollups_lock() RETURNS int
LANGUAGE sql IMMUTABLE AS $$ SELECT 724530119 $$;

-- recompute_limit_rollups rebuilds the sensor's limit rollups of the
-- buckets in [p_from, p_to), both bucket boundaries or infinite, from the
-- readings: those in the range and the one before it, whose hold may reach
-- into it. A hold past p_to is cut there; nothing past p_to is needed.
-- Most holds lie within one bucket and are taken whole; only the others
-- are split. Rows that did not change are not written, so the daily
-- trigger only sees real changes. PL/pgSQL, not SQL: the trigger calls it
-- for every changed bucket, and PL/pgSQL keeps the statement's plan for
-- the session where a SQL function would plan it on every call.
CREATE FUNCTION recompute_limit_rollups(p_sensor uuid, p_from timestamptz, p_to timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH s AS (
        SELECT alert_low, alert_high, silence_after FROM sensors WHERE id = p_sensor
    ), r AS (
        SELECT measured_at, value, lead(measured_at) OVER (ORDER BY measured_at) AS next_at
        FROM readings WHERE sensor_id = p_sensor AND measured_at >= p_from AND measured_at < p_to
        UNION ALL
        (SELECT p.measured_at, p.value,
                (SELECT n.measured_at FROM readings n WHERE n.sensor_id = p_sensor AND n.measured_at >= p_from ORDER BY n.measured_at LIMIT 1)
         FROM readings p WHERE p.sensor_id = p_sensor AND p.measured_at < p_from ORDER BY p.measured_at DESC LIMIT 1)
    ), held AS (
        SELECT date_bin('15 minutes', greatest(r.measured_at, p_from), timestamptz 'epoch') AS b1,
               greatest(r.measured_at, p_from) AS from_at,
               least(r.next_at, r.measured_at + s.silence_after, p_to) AS to_at,
               r.value > s.alert_high AS above
        FROM r, s
        WHERE (r.value > s.alert_high OR r.value < s.alert_low)
          AND least(r.next_at, r.measured_at + s.silence_after, p_to) > greatest(r.measured_at, p_from)
    ), split AS (
        SELECT b1 AS b, above, to_at - from_at AS d FROM held WHERE to_at <= b1 + interval '15 minutes'
        UNION ALL
        SELECT b, above, least(to_at, b + interval '15 minutes') - greatest(from_at, b)
        FROM held, generate_series(b1, to_at - interval '1 microsecond', interval '15 minutes') AS b
        WHERE to_at > b1 + interval '15 minutes'
    ), fresh AS (
        SELECT b, (extract(epoch FROM coalesce(sum(d) FILTER (WHERE above), '0')) * 1000000)::bigint AS above_us,
                  (extract(epoch FROM coalesce(sum(d) FILTER (WHERE NOT above), '0')) * 1000000)::bigint AS below_us
        FROM split GROUP BY b
    ), gone AS (
        DELETE FROM limit_rollups l
        WHERE l.sensor_id = p_sensor AND l.bucket_start >= p_from AND l.bucket_start < p_to
          AND l.bucket_start NOT IN (SELECT b FROM fresh)
    )
    INSERT INTO limit_rollups AS l (sensor_id, bucket_start, above_us, below_us)
    SELECT p_sensor, b, above_us, below_us FROM fresh
    ON CONFLICT (sensor_id, bucket_start) DO UPDATE SET above_us = excluded.above_us, below_us = excluded.below_us
    WHERE (l.above_us, l.below_us) IS DISTINCT FROM (excluded.above_us, excluded.below_us);
END $$;

-- reading_rollups_to_limits follows every change of a 15-minute rollup row
-- (the readings of its bucket changed) with the limit rollups of the span
-- that change can reach (see the top of this file). Sensors without limits
-- have no limit rollups (a limit change rebuilds them), so they stop after
-- the lock, which is taken before the limits are read: a limit change
-- committed meanwhile is then seen, one under way is waited for.
CREATE FUNCTION reading_rollups_to_limits() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sid  uuid;
    b    timestamptz;
    hold interval;
    nxt  timestamptz;
BEGIN
    IF TG_OP = 'DELETE' THEN
        sid := OLD.sensor_id; b := OLD.bucket_start;
    ELSE
        sid := NEW.sensor_id; b := NEW.bucket_start;
    END IF;
    PERFORM pg_advisory_xact_lock(limit_rollups_lock(), hashtext(sid::text));
    SELECT silence_after INTO hold FROM sensors
    WHERE id = sid AND (alert_low IS NOT NULL OR alert_high IS NOT NULL);
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT measured_at INTO nxt FROM readings
    WHERE sensor_id = sid AND measured_at >= b + interval '15 minutes' ORDER BY measured_at LIMIT 1;
    PERFORM recompute_limit_rollups(sid, b,
        rollup_bucket(least(nxt, b + interval '15 minutes' + hold) - interval '1 microsecond') + interval '15 minutes');
    RETURN NULL;
END $$;

CREATE TRIGGER reading_rollups_limits_sync
    AFTER INSERT OR UPDATE OR DELETE ON reading_rollups
    FOR EACH ROW EXECUTE FUNCTION reading_rollups_to_limits();

-- limit_rollups_to_daily adds each change of a bucket to its day in every
-- kept zone (the zones of reading_rollups_to_daily).
CREATE FUNCTION limit_rollups_to_daily() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz  text;
    sid uuid;
    b   timestamptz;
    da  bigint;
    db  bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        sid := NEW.sensor_id; b := NEW.bucket_start; da := NEW.above_us; db := NEW.below_us;
    ELSIF TG_OP = 'DELETE' THEN
        sid := OLD.sensor_id; b := OLD.bucket_start; da := -OLD.above_us; db := -OLD.below_us;
    ELSE
        sid := NEW.sensor_id; b := NEW.bucket_start; da := NEW.above_us - OLD.above_us; db := NEW.below_us - OLD.below_us;
    END IF;
    FOR tz IN SELECT c.timezone FROM sensors s JOIN clients c ON c.id = s.client_id WHERE s.id = sid
            UNION ALL
            SELECT z.timezone FROM sensors s JOIN rollup_zones z ON z.client_id = s.client_id WHERE s.id = sid LOOP
        INSERT INTO limit_rollups_daily AS t (sensor_id, timezone, day, above_us, below_us)
        VALUES (sid, tz, (b AT TIME ZONE tz)::date, da, db)
        ON CONFLICT (sensor_id, timezone, day) DO UPDATE SET
            above_us = t.above_us + excluded.above_us, below_us = t.below_us + excluded.below_us;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER limit_rollups_daily_sync
    AFTER INSERT OR UPDATE OR DELETE ON limit_rollups
    FOR EACH ROW EXECUTE FUNCTION limit_rollups_to_daily();

-- sensors_limits_to_rollups rebuilds a sensor's limit rollups when its
-- limits or silence threshold change: one pass over its readings. The
-- ROW EXCLUSIVE lock on reading_rollups is the one every rollup writer
-- holds, so the zone builders (which lock writers out) wait for it.
CREATE FUNCTION sensors_limits_to_rollups() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE reading_rollups IN ROW EXCLUSIVE MODE;
    PERFORM pg_advisory_xact_lock(limit_rollups_lock(), hashtext(NEW.id::text));
    PERFORM recompute_limit_rollups(NEW.id, '-infinity', 'infinity');
    RETURN NULL;
END $$;

CREATE TRIGGER sensors_limits_rollups
    AFTER UPDATE OF alert_low, alert_high, silence_after ON sensors
    FOR EACH ROW WHEN (OLD.alert_low IS DISTINCT FROM NEW.alert_low
        OR OLD.alert_high IS DISTINCT FROM NEW.alert_high
        OR OLD.silence_after IS DISTINCT FROM NEW.silence_after)
    EXECUTE FUNCTION sensors_limits_to_rollups();

-- The baseline's zone builder, building mkt_sum and the limit days too.
CREATE OR REPLACE FUNCTION build_rollup_zone(p_client uuid, p_tz text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO reading_rollups_daily (sensor_id, timezone, day, count, sum, min, max, first_at, last_at, mkt_sum)
    SELECT r.sensor_id, p_tz, (r.bucket_start AT TIME ZONE p_tz)::date,
           sum(r.count), sum(r.sum), min(r.min), max(r.max), min(r.first_at), max(r.last_at), mkt_sum_known(array_agg(r.mkt_sum))
    FROM reading_rollups r JOIN sensors s ON s.id = r.sensor_id
    WHERE s.client_id = p_client
    GROUP BY 1, 2, 3;
    INSERT INTO limit_rollups_daily (sensor_id, timezone, day, above_us, below_us)
    SELECT l.sensor_id, p_tz, (l.bucket_start AT TIME ZONE p_tz)::date, sum(l.above_us), sum(l.below_us)
    FROM limit_rollups l JOIN sensors s ON s.id = l.sensor_id
    WHERE s.client_id = p_client
    GROUP BY 1, 2, 3;
$$;

-- The baseline's zone change, dropping and building the limit days too.
CREATE OR REPLACE FUNCTION rebuild_client_daily_rollups(p_client uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    tz text;
BEGIN
    LOCK TABLE reading_rollups IN SHARE ROW EXCLUSIVE MODE;
    SELECT timezone INTO tz FROM clients WHERE id = p_client;
    IF EXISTS (SELECT 1 FROM rollup_zones WHERE client_id = p_client AND timezone = tz) THEN
        DELETE FROM rollup_zones WHERE client_id = p_client AND timezone = tz;
        tz := NULL; -- kept already
    END IF;
    DELETE FROM reading_rollups_daily
    WHERE sensor_id IN (SELECT id FROM sensors WHERE client_id = p_client)
      AND timezone <> ALL (ARRAY(SELECT timezone FROM rollup_zones WHERE client_id = p_client UNION ALL SELECT timezone FROM clients WHERE id = p_client));
    DELETE FROM limit_rollups_daily
    WHERE sensor_id IN (SELECT id FROM sensors WHERE client_id = p_client)
      AND timezone <> ALL (ARRAY(SELECT timezone FROM rollup_zones WHERE client_id = p_client UNION ALL SELECT timezone FROM clients WHERE id = p_client));
    IF tz IS NOT NULL THEN
        DELETE FROM reading_rollups_daily WHERE sensor_id IN (SELECT id FROM sensors WHERE client_id = p_client) AND timezone = tz;
        DELETE FROM limit_rollups_daily WHERE sensor_id IN (SELECT id FROM sensors WHERE client_id = p_client) AND timezone = tz;
        PERFORM build_rollup_zone(p_client, tz);
    END IF;
END $$;

-- Sensors with limits get their limit rollups (and, by the trigger, days).
SELECT recompute_limit_rollups(id, '-infinity', 'infinity') FROM sensors
WHERE alert_low IS NOT NULL OR alert_high IS NOT NULL;
