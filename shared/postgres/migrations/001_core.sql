-- Core schema: tenants (clients), users, sensors, readings and the 15-minute
-- rollups that daily averages are read from.

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
