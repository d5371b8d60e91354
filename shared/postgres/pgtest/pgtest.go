// Package pgtest gives each integration test its own migrated PostgreSQL
// schema on the real server, so tests run in parallel without sharing rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/faultproxy"
	"github.com/tempwatch/tempwatch/shared/postgres"
)

// DefaultURL is the development machine's PostgreSQL (README, "Quick start"); TEST_DATABASE_URL overrides it.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BaseURL returns the server URL tests use.
func BaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// MustBaseURL returns BaseURL for a test that connects to the server
// itself; under -short (make test-unit) it skips the test instead.
func MustBaseURL(tb testing.TB) string {
	tb.Helper()
	skipShort(tb)
	return BaseURL()
}

func skipShort(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("pgtest: needs PostgreSQL, so not run with -short (make test-unit)")
	}
}

// MustSchemaURL creates an empty schema, dropped when tb ends, and returns a
// connection URL whose search_path is that schema. A missing server fails the
// test: it is never a skip. Under -short (make test-unit, the tier that runs
// without services) the test is skipped before the server is asked.
func MustSchemaURL(tb testing.TB) string {
	tb.Helper()
	skipShort(tb)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, BaseURL())
	if err != nil {
		tb.Fatalf("pgtest: PostgreSQL unreachable (start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`): %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("pgtest: create schema: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), BaseURL())
		if err != nil {
			tb.Errorf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(BaseURL())
	if err != nil {
		tb.Fatalf("pgtest: parse TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// MustMigratedURL is MustSchemaURL with the schema migrated, for programs
// under test that open it as functions do (postgres.Open checks the schema
// and changes nothing).
func MustMigratedURL(tb testing.TB) string {
	tb.Helper()
	u := MustSchemaURL(tb)
	mustMigrate(tb, u).Close()
	return u
}

// MustDB returns a pool on a fresh, migrated schema of its own.
func MustDB(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool := mustMigrate(tb, MustSchemaURL(tb))
	tb.Cleanup(pool.Close)
	return pool
}

// mustMigrate connects to u and applies the migrations directly, as the
// migrate step would.
func mustMigrate(tb testing.TB, u string) *pgxpool.Pool {
	tb.Helper()
	ctx := context.Background()
	pool, err := postgres.Connect(ctx, u)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	if _, err := postgres.Migrate(ctx, pool, nil); err != nil {
		pool.Close()
		tb.Fatalf("pgtest: %v", err)
	}
	return pool
}

// CheckSchema is postgres.CheckSchema on the database at u, as a function
// checks it at start: nil only when u is migrated.
func CheckSchema(tb testing.TB, u string) error {
	tb.Helper()
	pool, err := postgres.Connect(context.Background(), u)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	defer pool.Close()
	return postgres.CheckSchema(context.Background(), pool)
}

// MustProxiedDB returns a second pool on db's schema through a proxy the
// test can cut (faultproxy), giving up on a missing server within 2 s.
func MustProxiedDB(tb testing.TB, db *pgxpool.Pool) (*pgxpool.Pool, *faultproxy.Proxy) {
	tb.Helper()
	ctx := context.Background()
	var schema string
	if err := db.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		tb.Fatalf("pgtest: current schema: %v", err)
	}
	u, err := url.Parse(BaseURL())
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	proxy := faultproxy.MustStart(tb, u.Host)
	u.Host = proxy.Addr()
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	pool, err := postgres.Open(ctx, u.String())
	if err != nil {
		tb.Fatalf("pgtest: open through the proxy: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool, proxy
}
