package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.ClientService = (*ClientStore)(nil)

// ClientStore keeps clients in PostgreSQL.
type ClientStore struct{ db *pgxpool.Pool }

// NewClientStore returns a ClientStore over db.
func NewClientStore(db *pgxpool.Pool) *ClientStore { return &ClientStore{db: db} }

const clientColumns = `id, name, slug, timezone, created_at, updated_at`

func scanClient(row pgx.CollectableRow) (*tempwatch.Client, error) {
	var c tempwatch.Client
	err := row.Scan(&c.ID, &c.Name, &c.Slug, &c.Timezone, &c.CreatedAt, &c.UpdatedAt)
	return &c, err
}

// CreateClient inserts c and fills its id and timestamps.
func (s *ClientStore) CreateClient(ctx context.Context, c *tempwatch.Client) error {
	if c.Timezone == "" {
		c.Timezone = "UTC"
	}
	if err := c.Validate(); err != nil {
		return err
	}
	return audited(ctx, s.db, func(tx pgx.Tx) (*tempwatch.AuditEvent, error) {
		rows, _ := tx.Query(ctx, `INSERT INTO clients (name, slug, timezone) VALUES ($1, $2, $3)
			RETURNING `+clientColumns, c.Name, c.Slug, c.Timezone)
		created, err := pgx.CollectExactlyOneRow(rows, scanClient)
		if err != nil {
			return nil, translate(err, "Client")
		}
		*c = *created
		return entityEvent(tempwatch.ActionCreate, tempwatch.AuditClient, c.ID, c.ID, nil, c), nil
	})
}

// FindClientByID returns the client with id, or ENOTFOUND.
func (s *ClientStore) FindClientByID(ctx context.Context, id string) (*tempwatch.Client, error) {
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.NotFound("Client")
	}
	rows, _ := s.db.Query(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id)
	c, err := pgx.CollectExactlyOneRow(rows, scanClient)
	return c, translate(err, "Client")
}

// FindClients returns up to f.Page.Limit+1 clients, newest first.
func (s *ClientStore) FindClients(ctx context.Context, f tempwatch.ClientFilter) ([]*tempwatch.Client, error) {
	q := newListQuery(`SELECT ` + clientColumns + ` FROM clients`)
	if f.Name != "" {
		q.and(`name ILIKE '%' || ` + q.arg(escapeLike(f.Name)) + ` || '%'`)
	}
	if f.OnlyID != "" {
		q.and(`id = ` + q.arg(f.OnlyID))
	}
	return collect(ctx, s.db, q, f.Page, scanClient, "clients")
}

// UpdateClient applies the fields upd sets and returns the stored client.
func (s *ClientStore) UpdateClient(ctx context.Context, id string, upd tempwatch.ClientUpdate) (*tempwatch.Client, error) {
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.NotFound("Client")
	}
	if err := upd.Validate(); err != nil {
		return nil, err
	}
	var c *tempwatch.Client
	err := audited(ctx, s.db, func(tx pgx.Tx) (*tempwatch.AuditEvent, error) {
		rows, _ := tx.Query(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1 FOR NO KEY UPDATE`, id)
		before, err := pgx.CollectExactlyOneRow(rows, scanClient)
		if err != nil {
			return nil, translate(err, "Client")
		}
		rows, _ = tx.Query(ctx, `UPDATE clients SET
				name = coalesce($2, name),
				slug = coalesce($3, slug),
				timezone = coalesce($4, timezone),
				updated_at = now()
			WHERE id = $1 RETURNING `+clientColumns, id, upd.Name, upd.Slug, upd.Timezone)
		if c, err = pgx.CollectExactlyOneRow(rows, scanClient); err != nil {
			return nil, translate(err, "Client")
		}
		return entityEvent(tempwatch.ActionUpdate, tempwatch.AuditClient, id, id, before, c), nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DeleteClient removes the client and, by cascade, its sensors and readings.
// Its users are deleted first in the same transaction, to return their ids:
// with their rows gone, none of their tokens passes (TokensValidAfter).
func (s *ClientStore) DeleteClient(ctx context.Context, id string) ([]string, error) {
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.NotFound("Client")
	}
	var users []string
	err := audited(ctx, s.db, func(tx pgx.Tx) (*tempwatch.AuditEvent, error) {
		rows, _ := tx.Query(ctx, `DELETE FROM users WHERE client_id = $1 RETURNING id::text`, id)
		var err error
		if users, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, translate(err, "Client")
		}
		rows, _ = tx.Query(ctx, `DELETE FROM clients WHERE id = $1 RETURNING `+clientColumns, id)
		before, err := pgx.CollectExactlyOneRow(rows, scanClient)
		if err != nil {
			return nil, translate(err, "Client")
		}
		return entityEvent(tempwatch.ActionDelete, tempwatch.AuditClient, id, id, before, nil), nil
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}
