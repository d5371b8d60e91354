package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
)

func TestMigrationsAreNumberedInOrder(t *testing.T) {
	ms, err := postgres.Migrations()
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	for i := 1; i < len(ms); i++ {
		assert.Less(t, ms[i-1].Version, ms[i].Version, "%s before %s", ms[i-1].Name, ms[i].Name)
	}
}

// A checked-in migration never changes: SHA256SUMS (sha256sum's format, so
// `sha256sum -c SHA256SUMS` in the folder checks it too) holds each file's
// digest from when it was added. A new migration adds its line; a changed
// one fails here before it can fail a deploy.
func TestMigrationsMatchTheirCheckedInSums(t *testing.T) {
	sums := map[string]string{}
	f, err := os.Open(filepath.Join("migrations", "SHA256SUMS"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		require.True(t, ok, "SHA256SUMS line %q is not `<sha256>  <file>`", sc.Text())
		sums[name] = sum
	}
	require.NoError(t, sc.Err())

	ms, err := postgres.Migrations()
	require.NoError(t, err)
	for _, m := range ms {
		want, ok := sums[m.Name]
		if !assert.True(t, ok, "migrations/%s is not in SHA256SUMS: add the line %q", m.Name, m.SHA256+"  "+m.Name) {
			continue
		}
		assert.Equal(t, want, m.SHA256, "migrations/%s changed after it was checked in: migrations are immutable; "+
			"restore it and put the change in a new migration numbered above the last", m.Name)
		delete(sums, m.Name)
	}
	assert.Empty(t, sums, "SHA256SUMS lists migrations that are gone: a checked-in migration is never removed")
}

// recorded returns schema_migrations' versions and digests.
func recorded(t *testing.T, pool *pgxpool.Pool) map[int]string {
	t.Helper()
	rows, _ := pool.Query(context.Background(), `SELECT version, sha256 FROM schema_migrations`)
	got := map[int]string{}
	var v int
	var sum string
	_, err := pgx.ForEachRow(rows, []any{&v, &sum}, func() error { got[v] = sum; return nil })
	require.NoError(t, err)
	return got
}

func mustConnect(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Connect(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// Several migrate runs at once on a fresh database apply each migration once.
func TestMigrateConcurrentRuns(t *testing.T) {
	t.Parallel()
	url := pgtest.MustSchemaURL(t)
	ctx := context.Background()
	const runs = 6
	var wg sync.WaitGroup
	errs := make([]error, runs)
	applied := make([][]string, runs)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := postgres.Connect(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			res, err := postgres.Migrate(ctx, pool, nil)
			errs[i], applied[i] = err, res.Applied
		}()
	}
	wg.Wait()
	ms, err := postgres.Migrations()
	require.NoError(t, err)
	var all []string
	for i, err := range errs {
		require.NoError(t, err, "run %d", i)
		all = append(all, applied[i]...)
	}
	want := map[int]string{}
	var names []string
	for _, m := range ms {
		want[m.Version] = m.SHA256
		names = append(names, m.Name)
	}
	assert.ElementsMatch(t, names, all, "each migration applied by exactly one run")

	pool := mustConnect(t, url)
	assert.Equal(t, want, recorded(t, pool), "each migration recorded once, with its file's digest")

	var out bytes.Buffer
	res, err := postgres.Migrate(ctx, pool, &out)
	require.NoError(t, err)
	assert.Empty(t, res.Applied, "a second run finds nothing to do")
	assert.Equal(t, ms[len(ms)-1].Version, res.Version)
	assert.Contains(t, out.String(), "0 to apply")
	require.NoError(t, postgres.CheckSchema(ctx, pool))
}

func TestMigrateReportsProgress(t *testing.T) {
	t.Parallel()
	pool := mustConnect(t, pgtest.MustSchemaURL(t))
	ms, err := postgres.Migrations()
	require.NoError(t, err)
	var out bytes.Buffer
	res, err := postgres.Migrate(context.Background(), pool, &out)
	require.NoError(t, err)
	assert.Len(t, res.Applied, len(ms))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, len(ms)+2, out.String())
	assert.Contains(t, lines[0], "database at version 0 (no migrations applied)")
	for i, m := range ms {
		assert.True(t, strings.HasPrefix(lines[i+1], "applied "+m.Name+" in "), "line %q", lines[i+1])
	}
	assert.Equal(t, "schema at version "+strconv.Itoa(ms[len(ms)-1].Version), lines[len(lines)-1])
}

// Functions check the schema at start: a fresh or outdated database is
// refused naming both versions and the migrate step, and the check itself
// creates nothing.
func TestCheckSchemaRefusesAnUnmigratedDatabaseWithoutChangingIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := mustConnect(t, pgtest.MustSchemaURL(t))
	ms, err := postgres.Migrations()
	require.NoError(t, err)
	latest := ms[len(ms)-1]

	err = postgres.CheckSchema(ctx, pool)
	require.ErrorIs(t, err, postgres.ErrSchemaBehind)
	for _, part := range []string{"version 0 (no migrations applied)", "needs version " + strconv.Itoa(latest.Version) + " (" + latest.Name + ")", "make migrate"} {
		assert.Contains(t, err.Error(), part)
	}
	var table *string
	require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations')::text`).Scan(&table))
	assert.Nil(t, table, "the check ran no DDL")

	_, err = postgres.Migrate(ctx, pool, nil)
	require.NoError(t, err)
	require.NoError(t, postgres.CheckSchema(ctx, pool))
}

// A newer build's migration (the database is ahead, e.g. while a deploy
// replaces the functions, or after a stack rollback) lets this build start,
// and its migrate run applies nothing.
func TestSchemaAheadOfTheBuild(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.MustDB(t)
	_, err := pool.Exec(ctx, `INSERT INTO schema_migrations (version, name, sha256) VALUES (9999, '9999_future.sql', repeat('a', 64))`)
	require.NoError(t, err)
	require.NoError(t, postgres.CheckSchema(ctx, pool))
	var out bytes.Buffer
	res, err := postgres.Migrate(ctx, pool, &out)
	require.NoError(t, err)
	assert.Empty(t, res.Applied)
	assert.Equal(t, 9999, res.Version)
	assert.Contains(t, out.String(), "ahead of this build's")
}

// An applied migration whose file has changed since is refused by the
// migrate step and by the functions' check, naming the file.
func TestChangedMigrationIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.MustDB(t)
	ms, err := postgres.Migrations()
	require.NoError(t, err)
	first := ms[0]
	_, err = pool.Exec(ctx, `UPDATE schema_migrations SET sha256 = repeat('0', 64) WHERE version = $1`, first.Version)
	require.NoError(t, err)

	_, err = postgres.Migrate(ctx, pool, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "migration "+first.Name+" was changed after it was applied")
	assert.Contains(t, err.Error(), first.SHA256)
	err = postgres.CheckSchema(ctx, pool)
	require.Error(t, err)
	assert.Contains(t, err.Error(), first.Name+" was changed")
}

// A database migrated by the chain the baseline replaced (no digests) is
// refused with what to do, not with a missing-column error.
func TestChainBeforeTheBaselineIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := mustConnect(t, pgtest.MustSchemaURL(t))
	_, err := pool.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO schema_migrations (version, name) VALUES (1, '001_core.sql'), (40, '040_archive_outbox.sql')`)
	require.NoError(t, err)
	_, err = postgres.Migrate(ctx, pool, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the baseline replaced")
	assert.Contains(t, err.Error(), "dropdb")
	err = postgres.CheckSchema(ctx, pool)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the baseline replaced")
}

func TestOpenChecksTheSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := postgres.Open(ctx, pgtest.MustSchemaURL(t))
	require.ErrorIs(t, err, postgres.ErrSchemaBehind)

	pool, err := postgres.Open(ctx, pgtest.MustMigratedURL(t))
	require.NoError(t, err)
	pool.Close()
}

func TestRecomputeRollupMatchesRawReadings(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	ctx := context.Background()
	client := pgtest.MustClient(t, db, "acme", "")
	sensor := pgtest.MustSensor(t, db, client, "dev-1", "key-1")
	_, err := db.Exec(ctx, `INSERT INTO readings (sensor_id, value, measured_at) VALUES
		($1, 1.5, '2026-01-01T10:00:00Z'), ($1, 4.5, '2026-01-01T10:14:59Z'), ($1, 9, '2026-01-01T10:15:00Z')`, sensor)
	require.NoError(t, err)
	_, err = db.Exec(ctx, `SELECT recompute_rollup($1, rollup_bucket('2026-01-01T10:07:00Z'))`, sensor)
	require.NoError(t, err)

	var count int
	var sum, lo, hi float64
	require.NoError(t, db.QueryRow(ctx, `SELECT count, sum, min, max FROM reading_rollups
		WHERE sensor_id = $1 AND bucket_start = '2026-01-01T10:00:00Z'`, sensor).Scan(&count, &sum, &lo, &hi))
	assert.Equal(t, 2, count, "the 10:15:00 reading belongs to the next bucket")
	assert.InDelta(t, 6.0, sum, 1e-9)
	assert.InDelta(t, 1.5, lo, 1e-9)
	assert.InDelta(t, 4.5, hi, 1e-9)

	_, err = db.Exec(ctx, `DELETE FROM readings WHERE sensor_id = $1 AND measured_at < '2026-01-01T10:15:00Z'`, sensor)
	require.NoError(t, err)
	_, err = db.Exec(ctx, `SELECT recompute_rollup($1, '2026-01-01T10:00:00Z')`, sensor)
	require.NoError(t, err)
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM reading_rollups WHERE sensor_id = $1 AND bucket_start = '2026-01-01T10:00:00Z'`, sensor).Scan(&count))
	assert.Zero(t, count, "an emptied bucket disappears")
}

func TestMigrateNamesAMissingSchema(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(pgtest.MustBaseURL(t))
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", "no_such_schema")
	u.RawQuery = q.Encode()
	pool := mustConnect(t, u.String())
	_, err = postgres.Migrate(context.Background(), pool, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no schema to migrate")
}

// TestRollupBucketIsInlined checks migration 013: rollup_bucket gives the
// buckets 001's body gave, before and after 1970 and at sub-second times,
// and the planner inlines it (a call left in the plan is a call per row).
func TestRollupBucketIsInlined(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	ctx := context.Background()
	var differ, n int
	require.NoError(t, db.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE rollup_bucket(t) <> to_timestamp(floor(extract(epoch FROM t) / 900) * 900)), count(*)
		FROM generate_series(timestamptz '1960-01-01 00:00:00.000001Z', '2040-01-01', interval '3 hours 7 minutes 13.123457 seconds') t`).
		Scan(&differ, &n))
	assert.Zero(t, differ, "of %d times", n)
	assert.Greater(t, n, 200000)

	var bucket time.Time
	require.NoError(t, db.QueryRow(ctx, `SELECT rollup_bucket('1969-12-31T23:59:59.999999Z')`).Scan(&bucket))
	assert.Equal(t, time.Date(1969, 12, 31, 23, 45, 0, 0, time.UTC), bucket.UTC())

	var plan string
	require.NoError(t, db.QueryRow(ctx, `EXPLAIN (VERBOSE, FORMAT JSON) SELECT rollup_bucket(t) FROM unnest($1::timestamptz[]) AS t`,
		[]time.Time{time.Now()}).Scan(&plan))
	assert.NotContains(t, plan, "rollup_bucket", "the call is inlined")
	assert.Contains(t, plan, "to_timestamp")
}
