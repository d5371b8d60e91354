package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/users"
)

var _ users.Store = (*UserStore)(nil)

// UserStore keeps users in PostgreSQL.
type UserStore struct{ db *pgxpool.Pool }

// NewUserStore returns a UserStore over db.
func NewUserStore(db *pgxpool.Pool) *UserStore { return &UserStore{db: db} }

const userColumns = `id, coalesce(client_id::text, ''), email, name, role, password_hash, created_at, updated_at`

func scanUser(row pgx.CollectableRow) (*users.User, error) {
	var u users.User
	err := row.Scan(&u.ID, &u.ClientID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &u.CreatedAt, &u.UpdatedAt)
	return &u, err
}

func userNotFound() error { return tempwatch.Errorf(tempwatch.ENOTFOUND, "User not found.") }

// CreateUser inserts u and fills its id and timestamps.
func (s *UserStore) CreateUser(ctx context.Context, u *users.User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	rows, _ := s.db.Query(ctx, `INSERT INTO users (client_id, email, name, role, password_hash)
		VALUES (nullif($1, '')::uuid, $2, $3, $4, $5) RETURNING `+userColumns,
		u.ClientID, u.Email, u.Name, u.Role, u.PasswordHash)
	created, err := pgx.CollectExactlyOneRow(rows, scanUser)
	if err != nil {
		return translate(err, "User")
	}
	*u = *created
	return nil
}

// FindUserByID returns the user with id, or ENOTFOUND.
func (s *UserStore) FindUserByID(ctx context.Context, id string) (*users.User, error) {
	if !tempwatch.IsUUID(id) {
		return nil, userNotFound()
	}
	rows, _ := s.db.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
	u, err := pgx.CollectExactlyOneRow(rows, scanUser)
	return u, translate(err, "User")
}

// FindUserByEmail returns the user whose email matches case-insensitively.
func (s *UserStore) FindUserByEmail(ctx context.Context, email string) (*users.User, error) {
	rows, _ := s.db.Query(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower($1)`, email)
	u, err := pgx.CollectExactlyOneRow(rows, scanUser)
	return u, translate(err, "User")
}

// FindUsers returns up to f.Page.Limit+1 users, newest first.
func (s *UserStore) FindUsers(ctx context.Context, f users.Filter) ([]*users.User, error) {
	q := newListQuery(`SELECT ` + userColumns + ` FROM users`)
	if f.ClientID != "" {
		if !tempwatch.IsUUID(f.ClientID) {
			return []*users.User{}, nil
		}
		q.and(`client_id = ` + q.arg(f.ClientID) + `::uuid`)
	}
	if f.Role != "" {
		q.and(`role = ` + q.arg(f.Role))
	}
	return collect(ctx, s.db, q, f.Page, scanUser, "users")
}

// UpdateUser stores every field of u. When the password hash changes, the
// user's refresh tokens are revoked in the same transaction: a password reset
// ends the sessions of whoever knew the old one.
func (s *UserStore) UpdateUser(ctx context.Context, u *users.User) error {
	if !tempwatch.IsUUID(u.ID) {
		return userNotFound()
	}
	if err := u.Validate(); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var oldHash string
		if err := tx.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1 FOR UPDATE`, u.ID).Scan(&oldHash); err != nil {
			return translate(err, "User")
		}
		rows, _ := tx.Query(ctx, `UPDATE users SET client_id = nullif($2, '')::uuid, email = $3, name = $4,
				role = $5, password_hash = $6, updated_at = now()
			WHERE id = $1 RETURNING `+userColumns, u.ID, u.ClientID, u.Email, u.Name, u.Role, u.PasswordHash)
		updated, err := pgx.CollectExactlyOneRow(rows, scanUser)
		if err != nil {
			return translate(err, "User")
		}
		if oldHash != u.PasswordHash {
			if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now()
				WHERE user_id = $1 AND revoked_at IS NULL`, u.ID); err != nil {
				return fmt.Errorf("revoke refresh tokens: %w", err)
			}
		}
		*u = *updated
		return nil
	})
}

// DeleteUser removes the user and, by cascade, their refresh tokens.
func (s *UserStore) DeleteUser(ctx context.Context, id string) error {
	if !tempwatch.IsUUID(id) {
		return userNotFound()
	}
	tag, err := s.db.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
	if err != nil {
		return translate(err, "User")
	}
	if tag.RowsAffected() == 0 {
		return userNotFound()
	}
	return nil
}
