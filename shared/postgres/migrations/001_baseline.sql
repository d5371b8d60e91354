-- The baseline: tempwatch's whole schema as it stood at the first deploy.
-- Applied migrations never change (see README.md in this folder): a schema
-- change is a new file numbered above the last one.

-- Tenants (clients), users and sensors.
CREATE TABLE clients (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    timezone    text NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clients_page ON clients (created_at DESC, id DESC);

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id      uuid REFERENCES clients (id) ON DELETE CASCADE,
    email          text NOT NULL,
    name           text NOT NULL DEFAULT '',
    role           text NOT NULL CHECK (role IN ('admin', 'client_admin', 'viewer')),
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- Every user but an admin belongs to exactly one client.
    CHECK ((role = 'admin') = (client_id IS NULL))
);
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE INDEX users_page ON users (client_id, created_at DESC, id DESC);
CREATE INDEX users_all_page ON users (created_at DESC, id DESC);

CREATE TABLE sensors (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id        uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    device_id        text NOT NULL CHECK (device_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    location         text NOT NULL DEFAULT '',
    unit             text NOT NULL DEFAULT 'C' CHECK (unit IN ('C', 'F')),
    -- Physical range the hardware can measure; readings outside are rejected.
    min_value        double precision NOT NULL DEFAULT -100,
    max_value        double precision NOT NULL DEFAULT 200,
    -- Optional alert thresholds, in degrees Celsius.
    alert_low        double precision,
    alert_high       double precision,
    device_key_hash  bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (client_id, device_id),
    CHECK (min_value < max_value)
);
CREATE INDEX sensors_page ON sensors (client_id, created_at DESC, id DESC);
CREATE INDEX sensors_all_page ON sensors (created_at DESC, id DESC);
CREATE UNIQUE INDEX sensors_device_key ON sensors (device_key_hash);

-- Refresh tokens. Only the SHA-256 of a token is stored. Tokens of one login
-- share a family (the session); a rotated token is marked used, and presenting
-- a used one again revokes the whole family (reuse detection).
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Readings are the large table. The natural key (sensor_id, measured_at)
-- makes redelivery harmless: a duplicate is counted, never stored twice.
-- Values are stored in degrees Celsius.
CREATE TABLE readings (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id    uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    value        double precision NOT NULL CHECK (value = value AND value NOT IN ('Infinity', '-Infinity')),
    measured_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    seq          bigint,
    UNIQUE (sensor_id, measured_at)
);
CREATE INDEX readings_page ON readings (sensor_id, created_at DESC, id DESC);

-- Rollups per sensor per 15-minute bucket (UTC-aligned). 15 minutes divides
-- every UTC offset in use (Asia/Kolkata +05:30, Asia/Kathmandu +05:45), so a
-- day cut at local midnight in any zone is a whole number of buckets.
CREATE TABLE reading_rollups (
    sensor_id     uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    bucket_start  timestamptz NOT NULL,
    count         bigint NOT NULL,
    sum           double precision NOT NULL,
    min           double precision NOT NULL,
    max           double precision NOT NULL,
    first_at      timestamptz NOT NULL,
    last_at       timestamptz NOT NULL,
    PRIMARY KEY (sensor_id, bucket_start)
);

-- rollup_bucket returns the start of the 15-minute bucket holding t.
CREATE FUNCTION rollup_bucket(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_timestamp(floor(extract(epoch FROM t) / 900) * 900)
$$;

-- recompute_rollup rebuilds one bucket from the raw readings. Inserts keep
-- rollups incrementally; corrections and deletes call this, since a min or
-- max cannot be taken back incrementally.
CREATE FUNCTION recompute_rollup(p_sensor uuid, p_bucket timestamptz) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM reading_rollups WHERE sensor_id = p_sensor AND bucket_start = p_bucket;
    INSERT INTO reading_rollups (sensor_id, bucket_start, count, sum, min, max, first_at, last_at)
    SELECT p_sensor, p_bucket, count(*), sum(value), min(value), max(value), min(measured_at), max(measured_at)
    FROM readings
    WHERE sensor_id = p_sensor AND measured_at >= p_bucket AND measured_at < p_bucket + interval '15 minutes'
    HAVING count(*) > 0;
$$;

-- Per-sensor local-day rollups, kept from reading_rollups by a trigger, so
-- daily averages read one row per day instead of 96: in the time zone of the
-- sensor's client, and in up to max_rollup_zones() other zones per client
-- that its daily averages are asked in (registered in rollup_zones; grouping
-- the 15-minute rollups by local day instead costs 96 rows per sensor-day per
-- request).
--
-- Writers keep their contract: inserts upsert reading_rollups incrementally,
-- corrections and deletes call recompute_rollup(sensor, bucket). The trigger
-- turns every change of a 15-minute row into the matching change of its day
-- in every kept zone: growth (insert, or an upsert that only adds readings)
-- is applied as a delta; anything that may shrink min/max/first/last (delete,
-- recompute) rebuilds that day from its 15-minute rows (at most 100 rows).
-- Zones not kept are read from reading_rollups directly: still exact, since
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

-- Daily averages read reading_rollups_daily by (sensor, zone, day range). Its
-- rows are updated in place by every ingest batch, so they scatter over the
-- heap: one page read per day. A covering index lets the scan answer from the
-- index alone (days older than the last vacuum are all-visible).
CREATE INDEX reading_rollups_daily_covering ON reading_rollups_daily (sensor_id, timezone, day DESC)
    INCLUDE (count, sum, min, max, first_at, last_at);

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

-- reading_rollups_to_daily is the trigger. Its zone query is written inline
-- (a set-returning SQL function would be planned on every call) and planned
-- once per session. UNION ALL: the client's own zone is never in
-- rollup_zones (keep_rollup_zone and rebuild_client_daily_rollups see to it).
CREATE FUNCTION reading_rollups_to_daily() RETURNS trigger
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

CREATE TRIGGER reading_rollups_daily_sync
    AFTER INSERT OR UPDATE OR DELETE ON reading_rollups
    FOR EACH ROW EXECUTE FUNCTION reading_rollups_to_daily();

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

-- rebuild_client_daily_rollups follows a client's zone change: it drops the
-- days of zones no longer kept and builds the new own zone unless it was
-- already kept as an extra zone. Rollup writers are locked out meanwhile, so
-- a batch that looked up the old zone is either already counted or waits.
CREATE FUNCTION rebuild_client_daily_rollups(p_client uuid) RETURNS void
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

-- What the ingest function could not write to MongoDB (raw payloads, dead
-- letters) waits here until MongoDB answers again, so an outage of the
-- archive neither blocks readings nor loses what it should have kept. One
-- row is one failed archive call, kept whole: MongoDB's _ids are hashes of
-- the call's contents, so draining the same row twice stores nothing twice.
CREATE TABLE archive_outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('raw_payloads', 'dead_letters')),
    items      integer NOT NULL CHECK (items > 0), -- payloads or dead letters in body
    body       bytea NOT NULL,                     -- the call's items, JSON
    created_at timestamptz NOT NULL DEFAULT now(),
    attempts   integer NOT NULL DEFAULT 0,         -- failed drains of this row
    last_error text
);

-- Drains take the least-tried rows first, so a row MongoDB keeps refusing
-- does not hold back the rows behind it.
CREATE INDEX archive_outbox_drain ON archive_outbox (attempts, id);
