package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var (
	_ tempwatch.UserStore    = (*UserStore)(nil)
	_ tempwatch.TokenCutoffs = (*UserStore)(nil)
)

// UserStore keeps users in PostgreSQL.
type UserStore struct{ db *pgxpool.Pool }

// NewUserStore returns a UserStore over db.
func NewUserStore(db *pgxpool.Pool) *UserStore { return &UserStore{db: db} }

const userColumns = `id, coalesce(client_id::text, ''), email, name, role, password_hash, tokens_valid_after, created_at, updated_at`

func scanUser(row pgx.CollectableRow) (*tempwatch.User, error) {
	var u tempwatch.User
	err := row.Scan(&u.ID, &u.ClientID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &u.TokensValidAfter, &u.CreatedAt, &u.UpdatedAt)
	return &u, err
}

// nextCutoff is the SQL of a user's new tokens_valid_after: now, and always
// later than the one it replaces, so a token issued under the old cutoff can
// never equal the new one.
const nextCutoff = `greatest(now(), tokens_valid_after + interval '1 microsecond')`

// TokensValidAfter returns user id's token cutoff, ENOTFOUND when there is no
// such user.
func (s *UserStore) TokensValidAfter(ctx context.Context, id string) (time.Time, error) {
	var t time.Time
	if !tempwatch.IsUUID(id) {
		return t, tempwatch.NotFound("User")
	}
	err := s.db.QueryRow(ctx, `SELECT tokens_valid_after FROM users WHERE id = $1`, id).Scan(&t)
	return t, translate(err, "User")
}

// CreateUser inserts u and fills its id and timestamps.
func (s *UserStore) CreateUser(ctx context.Context, u *tempwatch.User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	return audited(ctx, s.db, func(tx pgx.Tx) (*tempwatch.AuditEvent, error) {
		rows, _ := tx.Query(ctx, `INSERT INTO users (client_id, email, name, role, password_hash)
			VALUES (nullif($1, '')::uuid, $2, $3, $4, $5) RETURNING `+userColumns,
			u.ClientID, u.Email, u.Name, u.Role, u.PasswordHash)
		created, err := pgx.CollectExactlyOneRow(rows, scanUser)
		if err != nil {
			return nil, translate(err, "User")
		}
		*u = *created
		return userEvent(tempwatch.ActionCreate, nil, u), nil
	})
}

// FindUserByID returns the user with id, or ENOTFOUND.
func (s *UserStore) FindUserByID(ctx context.Context, id string) (*tempwatch.User, error) {
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.NotFound("User")
	}
	rows, _ := s.db.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
	u, err := pgx.CollectExactlyOneRow(rows, scanUser)
	return u, translate(err, "User")
}

// FindUserByLogin returns the user with email (case-insensitively) of the
// client with slug client, or of no client when client is "".
func (s *UserStore) FindUserByLogin(ctx context.Context, client, email string) (*tempwatch.User, error) {
	// Spelled as users_client_email's expression so the index serves it; an
	// unknown slug is NULL, which matches no one (and no admin).
	rows, _ := s.db.Query(ctx, `SELECT `+userColumns+` FROM users
		WHERE coalesce(client_id, '00000000-0000-0000-0000-000000000000'::uuid) =
			CASE WHEN $1 = '' THEN '00000000-0000-0000-0000-000000000000'::uuid
			     ELSE (SELECT id FROM clients WHERE slug = $1) END
		  AND lower(email) = lower($2)`, client, email)
	u, err := pgx.CollectExactlyOneRow(rows, scanUser)
	return u, translate(err, "User")
}

// FindUsers returns up to f.Page.Limit+1 users, newest first.
func (s *UserStore) FindUsers(ctx context.Context, f tempwatch.UserFilter) ([]*tempwatch.User, error) {
	q := newListQuery(`SELECT ` + userColumns + ` FROM users`)
	if f.ClientID != "" {
		if !tempwatch.IsUUID(f.ClientID) {
			return []*tempwatch.User{}, nil
		}
		q.and(`client_id = ` + q.arg(f.ClientID) + `::uuid`)
	}
	if f.Role != "" {
		q.and(`role = ` + q.arg(f.Role))
	}
	return collect(ctx, s.db, q, f.Page, scanUser, "users")
}

// UpdateUser stores every field of u. It refuses, with ECONFLICT, a u read
// before another change to the user (its UpdatedAt is stale: writing every
// field back would undo that change, say a password the user just set) and
// taking the admin role from the last admin. When the role, client or
// password hash changes (User.EndsTokens), the same transaction moves the
// user's token cutoff on and revokes their refresh tokens: a demotion or a
// password reset ends every session the user had.
func (s *UserStore) UpdateUser(ctx context.Context, u *tempwatch.User) error {
	if !tempwatch.IsUUID(u.ID) {
		return tempwatch.NotFound("User")
	}
	if err := u.Validate(); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		current, err := lockUser(ctx, tx, u.ID, u.Role != tempwatch.RoleAdmin)
		if err != nil {
			return err
		}
		if !current.UpdatedAt.Equal(u.UpdatedAt) {
			return tempwatch.Errorf(tempwatch.ECONFLICT, "The user was changed by another request; read it again and retry.")
		}
		endsTokens := u.EndsTokens(current)
		rows, _ := tx.Query(ctx, `UPDATE users SET client_id = nullif($2, '')::uuid, email = $3, name = $4,
				role = $5, password_hash = $6, updated_at = now(),
				tokens_valid_after = CASE WHEN $7 THEN `+nextCutoff+` ELSE tokens_valid_after END
			WHERE id = $1 RETURNING `+userColumns, u.ID, u.ClientID, u.Email, u.Name, u.Role, u.PasswordHash, endsTokens)
		updated, err := pgx.CollectExactlyOneRow(rows, scanUser)
		if err != nil {
			return translate(err, "User")
		}
		if endsTokens {
			if err := revokeRefreshTokens(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		if err := recordAudit(ctx, tx, userUpdateEvent(current, updated)); err != nil {
			return err
		}
		*u = *updated
		return nil
	})
}

// ChangePassword replaces the password hash of user id with newHash if it is
// still oldHash (ECONFLICT when another change came first), and in the same
// transaction moves the user's token cutoff on and revokes their refresh
// tokens. It returns the new cutoff.
func (s *UserStore) ChangePassword(ctx context.Context, id, oldHash, newHash string) (time.Time, error) {
	var cutoff time.Time
	if !tempwatch.IsUUID(id) {
		return cutoff, tempwatch.NotFound("User")
	}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE users SET password_hash = $3, updated_at = now(), tokens_valid_after = `+nextCutoff+`
			WHERE id = $1 AND password_hash = $2 RETURNING tokens_valid_after`, id, oldHash, newHash).Scan(&cutoff)
		if errors.Is(err, pgx.ErrNoRows) {
			return tempwatch.Errorf(tempwatch.ECONFLICT, "The password was changed by another request; try again.")
		}
		if err != nil {
			return fmt.Errorf("change password: %w", err)
		}
		if err := revokeRefreshTokens(ctx, tx, id); err != nil {
			return err
		}
		return recordPasswordChange(ctx, tx, id)
	})
	return cutoff, err
}

// revokeRefreshTokens revokes every live refresh token of user id.
func revokeRefreshTokens(ctx context.Context, tx pgx.Tx, id string) error {
	if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now()
		WHERE user_id = $1 AND revoked_at IS NULL`, id); err != nil {
		return fmt.Errorf("revoke refresh tokens: %w", err)
	}
	return nil
}

// errLastAdmin refuses a change that would leave no admin, and no way back in.
var errLastAdmin = tempwatch.Errorf(tempwatch.ECONFLICT,
	"This is the last admin: make another user an admin before demoting or deleting this one.")

// lockUser locks user id's row for the rest of tx and returns it (ENOTFOUND
// if there is none). When the change may take the admin role away (a demotion,
// a delete) it also locks every admin's row and refuses with errLastAdmin if id
// is the only admin left. Two such changes therefore queue: the second reads
// the first's committed result (READ COMMITTED re-checks a row it waited for
// against the WHERE clause), so demoting two admins at once cannot leave none.
// Rows are locked in id order, so these transactions wait for each other
// instead of deadlocking. A login storing its refresh token share-locks the
// user's row (CreateRefreshToken), so it waits for a change under way and
// then sees the cutoff that change set.
func lockUser(ctx context.Context, tx pgx.Tx, id string, removesAdmin bool) (*tempwatch.User, error) {
	q := `SELECT ` + userColumns + ` FROM users WHERE id = $1 FOR NO KEY UPDATE`
	if removesAdmin {
		q = `SELECT ` + userColumns + ` FROM users WHERE id = $1 OR role = 'admin' ORDER BY id FOR NO KEY UPDATE`
	}
	rows, _ := tx.Query(ctx, q, id)
	locked, err := pgx.CollectRows(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("lock user: %w", err)
	}
	var target *tempwatch.User
	admins := 0
	for _, u := range locked {
		if u.ID == id {
			target = u
		}
		if u.Role == tempwatch.RoleAdmin {
			admins++
		}
	}
	switch {
	case target == nil:
		return nil, tempwatch.NotFound("User")
	case removesAdmin && target.Role == tempwatch.RoleAdmin && admins < 2:
		return nil, errLastAdmin
	}
	return target, nil
}

// DeleteUser removes the user and, by cascade, their refresh tokens. Deleting
// the last admin is ECONFLICT.
func (s *UserStore) DeleteUser(ctx context.Context, id string) error {
	if !tempwatch.IsUUID(id) {
		return tempwatch.NotFound("User")
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		u, err := lockUser(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id); err != nil {
			return translate(err, "User")
		}
		return recordAudit(ctx, tx, userEvent(tempwatch.ActionDelete, u, nil))
	})
}
