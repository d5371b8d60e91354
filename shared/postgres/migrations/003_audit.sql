-- The audit trail: who changed what, when, and what it was before.
-- Append-only in the database itself: a row, once written, is never updated
-- or deleted (the triggers below refuse it, whoever asks), and no route edits
-- it. It has no foreign keys on purpose: the record of a deleted user, client,
-- sensor or measurement outlives it.
CREATE TABLE audit_events (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- clock_timestamp, not now(): events of one transaction keep their order.
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id       uuid,          -- the user who acted; NULL for an unknown caller (a failed login)
    actor_address  text NOT NULL DEFAULT '',
    client_id      uuid,          -- the tenant the entity belongs to; NULL for admins' accounts and unknown emails
    action         text NOT NULL CHECK (action ~ '^[a-z_]{1,40}$'),
    entity         text NOT NULL CHECK (entity ~ '^[a-z_]{1,40}$'),
    entity_id      text NOT NULL DEFAULT '',
    before         jsonb,
    after          jsonb
);
CREATE INDEX audit_events_page ON audit_events (created_at DESC, id DESC);
CREATE INDEX audit_events_client_page ON audit_events (client_id, created_at DESC, id DESC);
CREATE INDEX audit_events_actor_page ON audit_events (actor_id, created_at DESC, id DESC);
CREATE INDEX audit_events_entity_page ON audit_events (entity, entity_id, created_at DESC, id DESC);

CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
