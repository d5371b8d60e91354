// Package postgres is the PostgreSQL adapter: the connection pool, schema
// migrations and the check of them, the stores of the domain types, and
// driver-error translation.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Open connects a pool to url, checks the server answers, and checks that
// the schema has every migration this build embeds (CheckSchema). It changes
// nothing: the migrate step applies migrations, so the role of url needs no
// right to change the schema.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pool, err := Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := CheckSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Connect connects a pool to url and checks the server answers, whatever
// its schema: for the migrate step and for tests that migrate a schema of
// their own.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse error may quote the URL, password included.
		return nil, errors.New("postgres: DATABASE_URL is not a valid connection string")
	}
	if cfg.MaxConns > 10 {
		cfg.MaxConns = 10
	}
	cfg.MaxConnIdleTime = time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: cannot reach %s:%d (is PostgreSQL running? start it with "+
			"`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`): %w",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return pool, nil
}

// translate turns driver errors into domain errors: no rows is ENOTFOUND,
// unique violations ECONFLICT, foreign-key and check violations EINVALID.
// what names the thing, for the message ("Client", "Sensor").
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return tempwatch.NotFound(what)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return tempwatch.Errorf(tempwatch.ECONFLICT, "%s already exists (%s).", what, conflictField(pgErr))
		case "23503":
			return tempwatch.Errorf(tempwatch.ENOTFOUND, "A record that %s refers to does not exist.", what)
		case "23514", "22P02", "22001", "22003":
			return tempwatch.Errorf(tempwatch.EINVALID, "%s has an invalid value.", what)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// conflictField names what clashed, from the constraint name, without the
// driver's message (which may echo values).
func conflictField(e *pgconn.PgError) string {
	switch e.ConstraintName {
	case "clients_slug_key":
		return "slug is taken"
	case "users_client_email":
		return "email is taken by another user of the same client (or, for an admin, another admin)"
	case "sensors_client_id_device_id_key":
		return "device_id is taken for this client"
	default:
		return "duplicate value"
	}
}
