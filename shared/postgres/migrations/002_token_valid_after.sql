-- Access ends when it is taken away: each user's tokens are valid only from
-- tokens_valid_after on. Deleting the user, changing their role or client,
-- and setting their password move it forward in the transaction of the
-- change; every authenticated request compares it with the stamp its access
-- token carries (shared/auth). The default lets the tokens of users who were
-- never changed pass, so a deploy ends no session.
ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz NOT NULL DEFAULT 'epoch';
