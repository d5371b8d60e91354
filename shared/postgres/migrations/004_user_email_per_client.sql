-- An email is unique within one client (and among the admins, who belong to
-- no client), not across tenants: a client admin creating a user must not
-- learn from a conflict that the address has an account at another company.
-- A login therefore names the client whose account it is (shared/auth/session).
CREATE UNIQUE INDEX users_client_email ON users (coalesce(client_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(email));
DROP INDEX users_email;
