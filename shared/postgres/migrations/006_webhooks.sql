-- Webhooks: per client, the URLs that alarm events are POSTed to, signed
-- with the webhook's secret, and the record of every delivery and attempt.
--
-- The secret must be kept in clear to sign with it (HMAC); the API shows
-- it only in the answers that create or rotate it.
CREATE TABLE webhooks (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id   uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    url         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    secret      text NOT NULL CHECK (length(secret) BETWEEN 32 AND 200),
    events      text[] NOT NULL CHECK (
        cardinality(events) >= 1
        AND events <@ ARRAY['alarm.opened', 'alarm.cleared', 'alarm.acknowledged', 'alarm.withdrawn']::text[]),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_client_page ON webhooks (client_id, created_at DESC, id DESC);
CREATE INDEX webhooks_page ON webhooks (created_at DESC, id DESC);

-- One delivery per webhook and alarm event. A delivery is 'pending' until
-- an attempt gets a 2xx ('delivered') or until the delivery worker gives
-- up on it, at least a day after it was created ('failed'). The worker
-- takes pending deliveries whose next_attempt_at has come, pushing
-- next_attempt_at on by a lease while it sends, so a worker that dies
-- mid-send leaves its deliveries to be taken again.
CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         bigint NOT NULL REFERENCES alarm_events (id) ON DELETE CASCADE,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer CHECK (last_status BETWEEN 100 AND 599),
    last_error       text NOT NULL DEFAULT '' CHECK (length(last_error) <= 500),
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (webhook_id, event_id),
    CHECK ((state = 'delivered') = (delivered_at IS NOT NULL))
);
-- The worker's queue: only pending deliveries, by when they are due.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- A webhook's deliveries, newest first.
CREATE INDEX webhook_deliveries_page ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

-- Every attempt of a delivery: when it started, how long it took, and the
-- answer's status or why there was none (never a secret, never the URL).
CREATE TABLE webhook_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    started_at   timestamptz NOT NULL,
    duration_ms  integer NOT NULL CHECK (duration_ms >= 0),
    status       integer CHECK (status BETWEEN 100 AND 599),
    error        text NOT NULL DEFAULT '' CHECK (length(error) <= 500),
    CHECK (status IS NOT NULL OR error <> '')
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, started_at);

-- Fan-out: each alarm event becomes one pending delivery per enabled
-- webhook of its client subscribed to its type, in the transaction that
-- wrote the event: one INSERT ... SELECT over the client's few webhooks (at
-- most ten, by webhooks_client_page), which touches no row the writer
-- locks (the foreign keys take KEY SHARE on the webhook and the new event).
-- A row trigger, not a statement trigger: ingest runs an INSERT into
-- alarm_events with every batch, almost always of no row, and a row
-- trigger then costs nothing, where a statement trigger would run each
-- time. Sending happens later, from this table, so no receiver can slow
-- the writer.
CREATE FUNCTION webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event_id)
    SELECT w.id, NEW.id
    FROM webhooks w
    WHERE w.client_id = NEW.client_id AND w.enabled AND NEW.type = ANY (w.events)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

CREATE TRIGGER alarm_events_fan_out AFTER INSERT ON alarm_events
    FOR EACH ROW EXECUTE FUNCTION webhook_fan_out();
