package postgres_test

import (
	"context"
	"sync"
	"testing"

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

// Several cold starts on a fresh database must apply each migration once.
func TestMigrateConcurrentColdStarts(t *testing.T) {
	t.Parallel()
	url := pgtest.MustSchemaURL(t)
	ctx := context.Background()
	const starts = 6
	var wg sync.WaitGroup
	errs := make([]error, starts)
	for i := range starts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			errs[i] = postgres.Migrate(ctx, pool)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "cold start %d", i)
	}

	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	rows, _ := pool.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	got, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	ms, err := postgres.Migrations()
	require.NoError(t, err)
	var want []int
	for _, m := range ms {
		want = append(want, m.Version)
	}
	assert.Equal(t, want, got, "each migration recorded exactly once")

	require.NoError(t, postgres.Migrate(ctx, pool), "a second run finds nothing to do")
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
