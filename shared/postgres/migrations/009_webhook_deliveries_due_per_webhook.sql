-- The delivery worker takes at most one due delivery per webhook at a time
-- (its oldest), over enabled webhooks only: one probe of this index per
-- enabled webhook, so a disabled webhook's pending deliveries are never
-- read, and one webhook's backlog cannot fill a take. 006's
-- webhook_deliveries_due stays while the build before this one may still
-- take by it; a later migration drops it.
CREATE INDEX webhook_deliveries_due_per_webhook ON webhook_deliveries (webhook_id, next_attempt_at)
    WHERE state = 'pending';
