package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the advisory lock class that, with the hash of the
// schema migrated, serialises migrate runs on one schema (tests migrate many
// schemas of one database at once).
const migrationLock = 724_530_118

// HowToMigrate names the deploy step that applies the migrations, for the
// messages of programs that find the schema behind.
const HowToMigrate = "run the migrate step first: `make migrate` (DATABASE_URL=... for another database), " +
	"or functions/migrate's bootstrap with DATABASE_URL set; make run, docker compose, LocalStack and sam deploy run it for you"

// ErrSchemaBehind means the database lacks migrations that this build
// embeds: the migrate step has not run against it.
var ErrSchemaBehind = errors.New("the database schema is behind this build")

// Migration is one numbered schema change, embedded from migrations/.
type Migration struct {
	Version int
	Name    string
	SQL     string
	SHA256  string // hex digest of the file, recorded when it is applied
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	seen := map[int]string{}
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must start with a positive number and '_'", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %q and %q share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(b)
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b), SHA256: hex.EncodeToString(sum[:])})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// applied is one row of schema_migrations.
type applied struct {
	Version int
	Name    string
	SHA256  string
}

// readApplied returns the migrations recorded in schema_migrations, in
// version order; none when the table does not exist.
func readApplied(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]applied, error) {
	var exists, hasSum bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL,
		EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('schema_migrations') AND attname = 'sha256' AND NOT attisdropped)`).
		Scan(&exists, &hasSum); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	if !exists {
		return nil, nil
	}
	if !hasSum {
		// The numbered chain (001 to 040) that the baseline replaced before
		// the first deploy recorded no digests.
		return nil, errors.New("schema_migrations was written by the migration chain that the baseline replaced before " +
			"the first deploy; nothing was deployed with it, so drop this database or schema (or point DATABASE_URL at " +
			"another) and migrate it anew, e.g. `dropdb -h 127.0.0.1 -U postgres tempwatch` for make run's")
	}
	rows, _ := q.Query(ctx, `SELECT version, name, sha256 FROM schema_migrations ORDER BY version`)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[applied])
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return out, nil
}

// plan compares what the database has applied with this build's
// migrations ms and returns those left to apply. It refuses when they
// disagree: an applied migration whose file changed since, one this build
// lacks below its latest (removed or renumbered), or a new one numbered
// below an applied one. Migrations beyond this build's latest are a newer
// build's: the schema is ahead, which is not an error (an old instance or a
// rolled-back stack runs against it until the newer build replaces it).
func plan(done []applied, ms []Migration) ([]Migration, error) {
	byVersion := make(map[int]Migration, len(ms))
	for _, m := range ms {
		byVersion[m.Version] = m
	}
	latest := ms[len(ms)-1].Version
	isApplied := map[int]bool{}
	top := applied{}
	for _, a := range done {
		isApplied[a.Version] = true
		if a.Version > top.Version {
			top = a
		}
		m, ok := byVersion[a.Version]
		switch {
		case ok && m.SHA256 != a.SHA256:
			return nil, fmt.Errorf("migration %s was changed after it was applied (the database recorded sha256 %s, the file's is %s): "+
				"applied migrations are immutable; restore the file and put the change in a new migration", m.Name, a.SHA256, m.SHA256)
		case !ok && a.Version < latest:
			return nil, fmt.Errorf("the database has applied migration %s, which this build does not have: "+
				"a migration was removed or renumbered after it was applied; restore it", a.Name)
		}
	}
	var pending []Migration
	for _, m := range ms {
		if isApplied[m.Version] {
			continue
		}
		if m.Version < top.Version {
			return nil, fmt.Errorf("migration %s is numbered below %s, which the database has applied already: "+
				"renumber it above %d", m.Name, top.Name, top.Version)
		}
		pending = append(pending, m)
	}
	return pending, nil
}

// versionOf is the latest applied version, 0 for none.
func versionOf(done []applied) int {
	if len(done) == 0 {
		return 0
	}
	return done[len(done)-1].Version
}

// describeVersion renders a schema version for messages.
func describeVersion(v int) string {
	if v == 0 {
		return "version 0 (no migrations applied)"
	}
	return "version " + strconv.Itoa(v)
}

// CheckSchema reports whether the database has every migration this build
// embeds, unchanged, without changing anything: functions call it at start
// instead of migrating. A schema behind the build is an ErrSchemaBehind
// naming both versions and how to migrate; a schema ahead (a newer build's
// migrations) passes.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	done, err := readApplied(ctx, pool)
	if err != nil {
		return fmt.Errorf("postgres: schema check: %w", err)
	}
	pending, err := plan(done, ms)
	if err != nil {
		return fmt.Errorf("postgres: schema check: %w", err)
	}
	if len(pending) > 0 {
		want := ms[len(ms)-1]
		return fmt.Errorf("postgres: %w: the database is at %s, this build needs version %d (%s); %s",
			ErrSchemaBehind, describeVersion(versionOf(done)), want.Version, want.Name, HowToMigrate)
	}
	return nil
}

// MigrateResult is what Migrate did.
type MigrateResult struct {
	Applied []string `json:"applied"`        // the migrations applied by this run, in order
	Version int      `json:"schema_version"` // the database's latest applied migration afterwards
}

// Migrate applies the pending migrations in order, each in its own
// transaction, recording each one's SHA-256 in schema_migrations, and
// writes a line to progress (nil: nowhere) for each step. It refuses, before
// applying anything, when the database and this build disagree (see plan).
// A session advisory lock on the schema, held on one connection for the
// whole run, makes a concurrent run wait and then find nothing left to do.
func Migrate(ctx context.Context, pool *pgxpool.Pool, progress io.Writer) (MigrateResult, error) {
	if progress == nil {
		progress = io.Discard
	}
	res := MigrateResult{Applied: []string{}}
	ms, err := Migrations()
	if err != nil {
		return res, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	var locked *bool // NULL when there is no current schema
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext(current_schema()))`, migrationLock).Scan(&locked); err != nil {
		return res, fmt.Errorf("migrate: take lock: %w", err)
	}
	if locked == nil {
		return res, errors.New("migrate: no schema to migrate: the search_path names none that exists")
	}
	if !*locked {
		fmt.Fprintln(progress, "another migrate run holds the lock; waiting for it")
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext(current_schema()))`, migrationLock); err != nil {
			return res, fmt.Errorf("migrate: take lock: %w", err)
		}
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`, migrationLock)
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return res, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	done, err := readApplied(ctx, conn)
	if err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	pending, err := plan(done, ms)
	if err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	res.Version = versionOf(done)
	fmt.Fprintf(progress, "database at %s; this build has %d migrations up to version %d; %d to apply\n",
		describeVersion(res.Version), len(ms), ms[len(ms)-1].Version, len(pending))
	for _, m := range pending {
		start := time.Now()
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)`, m.Version, m.Name, m.SHA256)
			return err
		}); err != nil {
			return res, fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		res.Applied = append(res.Applied, m.Name)
		res.Version = m.Version
		fmt.Fprintf(progress, "applied %s in %s\n", m.Name, time.Since(start).Round(time.Millisecond))
	}
	if res.Version > ms[len(ms)-1].Version {
		fmt.Fprintf(progress, "schema at version %d, ahead of this build's %d (a newer build migrated it): nothing to apply\n",
			res.Version, ms[len(ms)-1].Version)
	} else {
		fmt.Fprintf(progress, "schema at version %d\n", res.Version)
	}
	return res, nil
}
