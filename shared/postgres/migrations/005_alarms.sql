-- Alarms and device health.
--
-- Per sensor: how long a reading must stay beyond alert_low/alert_high
-- before an excursion is an alarm (alarm_delay), by how much it must come
-- back inside before it clears (alarm_hysteresis, degrees Celsius), and how
-- long without a reading makes it silent (silence_after). last_measured_at
-- and last_received_at are the newest reading's measured time and the time
-- the newest batch holding a reading of it was stored.
ALTER TABLE sensors
    ADD COLUMN alarm_delay       interval NOT NULL DEFAULT '0'
        CHECK (alarm_delay >= interval '0' AND alarm_delay <= interval '7 days'),
    ADD COLUMN alarm_hysteresis  double precision NOT NULL DEFAULT 0
        CHECK (alarm_hysteresis >= 0 AND alarm_hysteresis <= 100),
    ADD COLUMN silence_after     interval NOT NULL DEFAULT '15 minutes'
        CHECK (silence_after >= interval '1 minute' AND silence_after <= interval '30 days'),
    ADD COLUMN last_measured_at  timestamptz,
    ADD COLUMN last_received_at  timestamptz;

-- Last seen from the readings already stored, so evaluation continues from
-- the newest one and the silence sweep knows every sensor that has sent.
UPDATE sensors s SET
    last_measured_at = (SELECT max(measured_at) FROM readings r WHERE r.sensor_id = s.id),
    last_received_at = (SELECT max(created_at) FROM readings r WHERE r.sensor_id = s.id);

-- Every ingest batch updates its sensors' last seen times: no index holds
-- them, so the update stays a heap-only (HOT) one, given room on the page.
-- (The silence sweep scans sensors in full; it is small beside readings.)
ALTER TABLE sensors SET (fillfactor = 70);

-- One row per excursion (kind high or low) and per silence (kind silent).
--
-- An excursion is kept from its first reading beyond the limit (started_at)
-- to the reading that brings it back inside by the hysteresis (cleared_at),
-- both measured times. It is 'pending' while shorter than the sensor's
-- delay (not yet an alarm: no API shows it), 'open' once it is an alarm
-- (opened_at = started_at + delay), 'cleared' when it is over. A late
-- reading or a correction may split, merge, shorten or remove excursions;
-- one that an operator had acknowledged and that no longer exists is kept
-- as 'withdrawn', any other is deleted.
--
-- A silence starts at the sensor's last_received_at, opens once
-- silence_after has passed (opened_at) and clears at the next batch's
-- receipt; its peak is NULL and last_at is its started_at.
CREATE TABLE alarms (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sensor_id        uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    client_id        uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('high', 'low', 'silent')),
    state            text NOT NULL CHECK (state IN ('pending', 'open', 'cleared', 'withdrawn')),
    started_at       timestamptz NOT NULL,
    last_at          timestamptz NOT NULL,
    opened_at        timestamptz,
    cleared_at       timestamptz,
    peak             double precision,
    acknowledged_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    acknowledged_at  timestamptz,
    ack_comment      text NOT NULL DEFAULT '' CHECK (length(ack_comment) <= 1000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'pending') = (opened_at IS NULL) OR state = 'withdrawn'),
    CHECK ((state IN ('pending', 'open')) = (cleared_at IS NULL) OR state = 'withdrawn'),
    CHECK ((kind = 'silent') = (peak IS NULL)),
    CHECK (last_at >= started_at),
    CHECK (cleared_at IS NULL OR cleared_at > last_at OR (kind = 'silent' AND cleared_at >= last_at)),
    CHECK (acknowledged_at IS NOT NULL OR (acknowledged_by IS NULL AND ack_comment = ''))
);
-- At most one live excursion per sensor and kind: evaluation continues it.
CREATE UNIQUE INDEX alarms_live ON alarms (sensor_id, kind) WHERE state IN ('pending', 'open');
-- Excursions of one sensor and kind never share a start.
CREATE UNIQUE INDEX alarms_start ON alarms (sensor_id, kind, started_at) WHERE state <> 'withdrawn';
-- Lists, newest first by start, per client, per sensor and for admins.
CREATE INDEX alarms_client_page ON alarms (client_id, started_at DESC, id DESC) WHERE state <> 'pending';
CREATE INDEX alarms_sensor_page ON alarms (sensor_id, started_at DESC, id DESC);
CREATE INDEX alarms_all_page ON alarms (started_at DESC, id DESC) WHERE state <> 'pending';

-- alarm_events is the outbox of what notifications tell: an alarm opened,
-- cleared, acknowledged or withdrawn, written in the transaction that did
-- it, with the alarm as the API shows it (body). Delivery (webhooks) reads
-- it after the commit, so it never slows the writer.
CREATE TABLE alarm_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alarm_id    uuid NOT NULL REFERENCES alarms (id) ON DELETE CASCADE,
    client_id   uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    type        text NOT NULL CHECK (type IN ('alarm.opened', 'alarm.cleared', 'alarm.acknowledged', 'alarm.withdrawn')),
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alarm_events_client ON alarm_events (client_id, id);
CREATE INDEX alarm_events_alarm ON alarm_events (alarm_id);

-- utc_rfc3339 renders t as JSON's time in UTC, whatever the session's zone.
-- STABLE like to_char, so that it is inlined (a SQL function declared less
-- volatile than its body is not, and is planned again on every call).
CREATE FUNCTION utc_rfc3339(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- alarm_json is an alarm as the API shows it (tempwatch.Alarm's JSON), for
-- alarm_events bodies written in SQL by every writer alike. A silence's
-- duration runs to now while it lasts. PL/pgSQL, so that its expression is
-- planned once per session: a SQL function would be inlined into, and
-- planned again with, every statement that calls it.
CREATE FUNCTION alarm_json(a alarms) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN jsonb_build_object(
        'id', a.id, 'sensor_id', a.sensor_id, 'client_id', a.client_id,
        'kind', a.kind, 'state', a.state,
        'started_at', utc_rfc3339(a.started_at),
        'opened_at', utc_rfc3339(coalesce(a.opened_at, a.started_at)),
        'last_at', utc_rfc3339(a.last_at),
        'cleared_at', utc_rfc3339(a.cleared_at),
        'peak', a.peak,
        'duration_seconds', extract(epoch FROM coalesce(a.cleared_at,
            CASE WHEN a.kind = 'silent' THEN greatest(now(), a.last_at) ELSE a.last_at END) - a.started_at)::float8,
        'acknowledgement', CASE WHEN a.acknowledged_at IS NULL THEN NULL ELSE jsonb_strip_nulls(jsonb_build_object(
            'user_id', a.acknowledged_by, 'at', utc_rfc3339(a.acknowledged_at), 'comment', a.ack_comment)) END,
        'created_at', utc_rfc3339(a.created_at),
        'updated_at', utc_rfc3339(a.updated_at));
END
$$;
