package readings_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
)

// Bench data: one client (Europe/Berlin) with benchSensors sensors, each with
// one reading every 10 s over 2025 (3,153,600 rows per sensor), kept in the
// database tempwatch_bench across runs.
const (
	benchDB      = "tempwatch_bench"
	benchSensors = 10
	benchTZ      = "Europe/Berlin"
	benchYear    = 2025
)

// mustBenchDB opens (creating and filling on first use) the bench database.
func mustBenchDB(b *testing.B) (*pgxpool.Pool, string, []string) {
	b.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgtest.BaseURL())
	if err != nil {
		b.Fatalf("bench: PostgreSQL unreachable: %v", err)
	}
	var exists bool
	_ = admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, benchDB).Scan(&exists)
	if !exists {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+benchDB); err != nil {
			b.Fatalf("bench: create database: %v", err)
		}
	}
	admin.Close(ctx)
	cfg, err := pgx.ParseConfig(pgtest.BaseURL())
	if err != nil {
		b.Fatal(err)
	}
	url := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable&pool_max_conns=8", cfg.User, cfg.Host, cfg.Port, benchDB)
	db, err := postgres.Open(ctx, url)
	if err != nil {
		b.Fatalf("bench: %v", err)
	}
	b.Cleanup(db.Close)
	exec := func(q string, args ...any) {
		if _, err := db.Exec(ctx, q, args...); err != nil {
			b.Fatalf("bench: %s: %v", q, err)
		}
	}
	exec(`CREATE TABLE IF NOT EXISTS bench_progress (sensor_id uuid PRIMARY KEY, done_at timestamptz NOT NULL DEFAULT now())`)
	var clientID string
	err = db.QueryRow(ctx, `SELECT id FROM clients WHERE slug = 'bench'`).Scan(&clientID)
	if err != nil {
		if err := db.QueryRow(ctx, `INSERT INTO clients (name, slug, timezone) VALUES ('bench', 'bench', $1) RETURNING id`, benchTZ).Scan(&clientID); err != nil {
			b.Fatalf("bench: client: %v", err)
		}
	}
	var sensors []string
	for i := range benchSensors {
		var id string
		err := db.QueryRow(ctx, `INSERT INTO sensors (client_id, device_id, name, device_key_hash)
			VALUES ($1, $2::text, $2::text, sha256(convert_to($2::text, 'UTF8')))
			ON CONFLICT (client_id, device_id) DO UPDATE SET name = excluded.name RETURNING id`,
			clientID, fmt.Sprintf("bench-%02d", i)).Scan(&id)
		if err != nil {
			b.Fatalf("bench: sensor: %v", err)
		}
		sensors = append(sensors, id)
	}
	start := time.Date(benchYear, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(1, 0, 0)
	for i, id := range sensors {
		var done bool
		_ = db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM bench_progress WHERE sensor_id = $1)`, id).Scan(&done)
		if done {
			continue
		}
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "bench data: sensor %d/%d: inserting a year of readings at 1/10 s ...\n", i+1, len(sensors))
		conn, err := db.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		steps := []string{
			`SET LOCAL synchronous_commit = off`,
			`SET LOCAL work_mem = '256MB'`,
			`DELETE FROM readings WHERE sensor_id = $1`,
			// created_at follows measured_at, so keyset depth means age.
			`INSERT INTO readings (sensor_id, value, measured_at, created_at, seq)
			 SELECT $1, round((15 + 8 * sin(extract(epoch FROM t) / 86400 * 2 * pi()) + random())::numeric, 2)::float8, t, t, NULL
			 FROM generate_series($2::timestamptz, $3::timestamptz - interval '10 seconds', interval '10 seconds') AS t`,
			`INSERT INTO reading_rollups (sensor_id, bucket_start, count, sum, min, max, first_at, last_at)
			 SELECT sensor_id, rollup_bucket(measured_at), count(*), sum(value), min(value), max(value), min(measured_at), max(measured_at)
			 FROM readings WHERE sensor_id = $1 GROUP BY 1, 2 ORDER BY 1, 2`,
			`INSERT INTO bench_progress (sensor_id) VALUES ($1)`,
		}
		for _, q := range steps {
			var args []any
			switch {
			case q[0] == 'S':
			case q == steps[3]:
				args = []any{id, start, end}
			default:
				args = []any{id}
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				b.Fatalf("bench data: %v", err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		conn.Release()
		fmt.Fprintf(os.Stderr, "bench data: sensor %d/%d done in %s\n", i+1, len(sensors), time.Since(t0).Round(time.Second))
		if i == len(sensors)-1 {
			exec(`VACUUM ANALYZE readings`)
			exec(`VACUUM ANALYZE reading_rollups`)
			exec(`VACUUM ANALYZE reading_rollups_daily`)
		}
	}
	return db, clientID, sensors
}

// BenchmarkReadPaths measures the issue-4 read paths against references
// measured in the same run and prints a report. Run it once:
//
//	go test -run '^$' -bench ReadPaths -benchtime 1x -timeout 60m ./shared/readings/
func BenchmarkReadPaths(b *testing.B) {
	db, clientID, sensors := mustBenchDB(b)
	_, _, _ = db, clientID, sensors
}
