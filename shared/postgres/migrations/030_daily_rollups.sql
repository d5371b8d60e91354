-- Per-sensor local-day rollups in the time zone of the sensor's client, kept
-- from reading_rollups by a trigger, so the default daily averages (the
-- client's own zone) read one row per day instead of 96 per day.
--
-- Writers keep their contract: inserts upsert reading_rollups incrementally,
-- corrections and deletes call recompute_rollup(sensor, bucket). The trigger
-- turns every change of a 15-minute row into the matching change of its day:
-- growth (insert, or an upsert that only adds readings) is applied as a delta;
-- anything that may shrink min/max/first/last (delete, recompute) rebuilds
-- that day from its 15-minute rows (at most 100 rows).
--
-- Other zones are read from reading_rollups directly: still exact, since
-- every local midnight in use falls on a 15-minute boundary.

CREATE TABLE reading_rollups_daily (
    sensor_id  uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    timezone   text NOT NULL,
    day        date NOT NULL,
    count      bigint NOT NULL,
    sum        double precision NOT NULL,
    min        double precision NOT NULL,
    max        double precision NOT NULL,
    first_at   timestamptz NOT NULL,
    last_at    timestamptz NOT NULL,
    PRIMARY KEY (sensor_id, timezone, day)
);

-- recompute_rollup_day rebuilds one local day of a sensor in zone p_tz from
-- reading_rollups.
CREATE FUNCTION recompute_rollup_day(p_sensor uuid, p_tz text, p_day date) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM reading_rollups_daily WHERE sensor_id = p_sensor AND timezone = p_tz AND day = p_day;
    INSERT INTO reading_rollups_daily (sensor_id, timezone, day, count, sum, min, max, first_at, last_at)
    SELECT p_sensor, p_tz, p_day, sum(count), sum(sum), min(min), max(max), min(first_at), max(last_at)
    FROM reading_rollups
    WHERE sensor_id = p_sensor
      AND bucket_start >= (p_day::timestamp AT TIME ZONE p_tz)
      AND bucket_start < ((p_day + 1)::timestamp AT TIME ZONE p_tz)
    HAVING count(*) > 0;
$$;

CREATE FUNCTION reading_rollups_to_daily() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text;
    d  date;
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (
        NEW.count < OLD.count OR NEW.min > OLD.min OR NEW.max < OLD.max
        OR NEW.first_at > OLD.first_at OR NEW.last_at < OLD.last_at)) THEN
        SELECT c.timezone INTO tz FROM sensors s JOIN clients c ON c.id = s.client_id WHERE s.id = OLD.sensor_id;
        IF tz IS NOT NULL THEN
            PERFORM recompute_rollup_day(OLD.sensor_id, tz, (OLD.bucket_start AT TIME ZONE tz)::date);
        END IF;
        RETURN NULL;
    END IF;
    SELECT c.timezone INTO tz FROM sensors s JOIN clients c ON c.id = s.client_id WHERE s.id = NEW.sensor_id;
    IF tz IS NULL THEN
        RETURN NULL;
    END IF;
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
    RETURN NULL;
END $$;

CREATE TRIGGER reading_rollups_daily_sync
    AFTER INSERT OR UPDATE OR DELETE ON reading_rollups
    FOR EACH ROW EXECUTE FUNCTION reading_rollups_to_daily();

-- rebuild_client_daily_rollups recomputes the daily rollups of every sensor of
-- a client in its (new) zone. It locks out rollup writers meanwhile, so a
-- batch that looked up the old zone is either already counted or waits.
CREATE FUNCTION rebuild_client_daily_rollups(p_client uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    tz text;
BEGIN
    LOCK TABLE reading_rollups IN SHARE MODE;
    SELECT timezone INTO tz FROM clients WHERE id = p_client;
    DELETE FROM reading_rollups_daily WHERE sensor_id IN (SELECT id FROM sensors WHERE client_id = p_client);
    INSERT INTO reading_rollups_daily (sensor_id, timezone, day, count, sum, min, max, first_at, last_at)
    SELECT r.sensor_id, tz, (r.bucket_start AT TIME ZONE tz)::date,
           sum(r.count), sum(r.sum), min(r.min), max(r.max), min(r.first_at), max(r.last_at)
    FROM reading_rollups r JOIN sensors s ON s.id = r.sensor_id
    WHERE s.client_id = p_client
    GROUP BY 1, 2, 3;
END $$;

CREATE FUNCTION clients_timezone_to_daily() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM rebuild_client_daily_rollups(NEW.id);
    RETURN NULL;
END $$;

CREATE TRIGGER clients_timezone_daily_rebuild
    AFTER UPDATE OF timezone ON clients
    FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone)
    EXECUTE FUNCTION clients_timezone_to_daily();

-- Rollups that exist before this migration.
INSERT INTO reading_rollups_daily (sensor_id, timezone, day, count, sum, min, max, first_at, last_at)
SELECT r.sensor_id, c.timezone, (r.bucket_start AT TIME ZONE c.timezone)::date,
       sum(r.count), sum(r.sum), min(r.min), max(r.max), min(r.first_at), max(r.last_at)
FROM reading_rollups r JOIN sensors s ON s.id = r.sensor_id JOIN clients c ON c.id = s.client_id
GROUP BY 1, 2, 3;
