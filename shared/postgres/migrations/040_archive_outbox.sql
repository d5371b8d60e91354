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
