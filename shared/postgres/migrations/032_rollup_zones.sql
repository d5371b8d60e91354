-- Daily rollups in zones other than the client's own, kept on demand.
--
-- Grouping the 15-minute rollups by local day costs 96 rows per sensor-day
-- per request (a client of 10 sensors over a year: 350,400 rows). A zone
-- that a client's daily averages are asked in is instead registered in
-- rollup_zones (at most max_rollup_zones() per client) and kept in
-- reading_rollups_daily by the same trigger as the client's own zone, with
-- the same exactness rules (deltas on growth, rebuild of the day otherwise).

CREATE TABLE rollup_zones (
    client_id  uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    timezone   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, timezone)
);

-- max_rollup_zones bounds the extra zones kept per client: each costs one
-- daily-row upsert per 15-minute rollup change at ingest.
CREATE FUNCTION max_rollup_zones() RETURNS int
LANGUAGE sql IMMUTABLE AS $$ SELECT 4 $$;

-- rollup_zones_of returns every zone whose daily rollups are kept for a
-- sensor: its client's own zone and the client's registered extra zones.
CREATE FUNCTION rollup_zones_of(p_sensor uuid) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT c.timezone FROM sensors s JOIN clients c ON c.id = s.client_id WHERE s.id = p_sensor
    UNION
    SELECT z.timezone FROM sensors s JOIN rollup_zones z ON z.client_id = s.client_id WHERE s.id = p_sensor
$$;

CREATE OR REPLACE FUNCTION reading_rollups_to_daily() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text;
    d  date;
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (
        NEW.count < OLD.count OR NEW.min > OLD.min OR NEW.max < OLD.max
        OR NEW.first_at > OLD.first_at OR NEW.last_at < OLD.last_at)) THEN
        FOR tz IN SELECT rollup_zones_of(OLD.sensor_id) LOOP
            PERFORM recompute_rollup_day(OLD.sensor_id, tz, (OLD.bucket_start AT TIME ZONE tz)::date);
        END LOOP;
        RETURN NULL;
    END IF;
    FOR tz IN SELECT rollup_zones_of(NEW.sensor_id) LOOP
        d := (NEW.bucket_start AT TIME ZONE tz)::date;
        IF TG_OP = 'UPDATE' THEN
            INSERT INTO reading_rollups_daily AS t (sensor_id, timezone, day, count, sum, min, max, first_at, last_at)
            VALUES (NEW.sensor_id, tz, d, NEW.count - OLD.count, NEW.sum - OLD.sum, NEW.min, NEW.max, NEW.first_at, NEW.last_at)
            ON CONFLICT (sensor_id, timezone, day) DO UPDATE SET
                count = t.count + excluded.count, sum = t.sum + excluded.sum,
                min = least(t.min, excluded.min), max = greatest(t.max, excluded.max),
                first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at);
        ELSE
            INSERT INTO reading_rollups_daily AS t (sensor_id, timezone, day, count, sum, min, max, first_at, last_at)
            VALUES (NEW.sensor_id, tz, d, NEW.count, NEW.sum, NEW.min, NEW.max, NEW.first_at, NEW.last_at)
            ON CONFLICT (sensor_id, timezone, day) DO UPDATE SET
                count = t.count + excluded.count, sum = t.sum + excluded.sum,
                min = least(t.min, excluded.min), max = greatest(t.max, excluded.max),
                first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

-- build_rollup_zone fills the daily rollups of every sensor of a client in
-- zone p_tz from reading_rollups.
CREATE FUNCTION build_rollup_zone(p_client uuid, p_tz text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO reading_rollups_daily (sensor_id, timezone, day, count, sum, min, max, first_at, last_at)
    SELECT r.sensor_id, p_tz, (r.bucket_start AT TIME ZONE p_tz)::date,
           sum(r.count), sum(r.sum), min(r.min), max(r.max), min(r.first_at), max(r.last_at)
    FROM reading_rollups r JOIN sensors s ON s.id = r.sensor_id
    WHERE s.client_id = p_client
    GROUP BY 1, 2, 3;
$$;

-- A client's zone change: drop the days of zones no longer kept, build the
-- new own zone unless it was already kept as an extra zone. Rollup writers
-- are locked out meanwhile, as in 030.
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
    IF tz IS NOT NULL THEN
        DELETE FROM reading_rollups_daily WHERE sensor_id IN (SELECT id FROM sensors WHERE client_id = p_client) AND timezone = tz;
        PERFORM build_rollup_zone(p_client, tz);
    END IF;
END $$;

-- keep_rollup_zone registers p_tz as an extra zone of p_client and builds
-- its daily rollups, unless it is kept already (true) or the client has
-- max_rollup_zones() extra zones (false). Rollup writers are locked out
-- while it builds, so no change is missed or counted twice; a concurrent
-- call for the same zone waits and then finds it kept.
CREATE FUNCTION keep_rollup_zone(p_client uuid, p_tz text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM rollup_zones WHERE client_id = p_client AND timezone = p_tz)
       OR EXISTS (SELECT 1 FROM clients WHERE id = p_client AND timezone = p_tz) THEN
        RETURN true;
    END IF;
    IF (SELECT count(*) FROM rollup_zones WHERE client_id = p_client) >= max_rollup_zones() THEN
        RETURN false;
    END IF;
    PERFORM now() AT TIME ZONE p_tz; -- an unknown zone fails here (22023), before any lock
    LOCK TABLE reading_rollups IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM rollup_zones WHERE client_id = p_client AND timezone = p_tz)
       OR EXISTS (SELECT 1 FROM clients WHERE id = p_client AND timezone = p_tz) THEN
        RETURN true;
    END IF;
    IF (SELECT count(*) FROM rollup_zones WHERE client_id = p_client) >= max_rollup_zones() THEN
        RETURN false;
    END IF;
    INSERT INTO rollup_zones (client_id, timezone) VALUES (p_client, p_tz);
    PERFORM build_rollup_zone(p_client, p_tz);
    RETURN true;
END $$;
