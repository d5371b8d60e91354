package readings_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/readings"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
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
	db, err := postgres.Connect(ctx, url)
	if err != nil {
		b.Fatalf("bench: %v", err)
	}
	b.Cleanup(db.Close)
	if _, err := postgres.Migrate(ctx, db, nil); err != nil {
		b.Fatalf("bench: %v", err)
	}
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
	// As autovacuum would after a quiet spell: old days' rows all-visible.
	exec(`VACUUM ANALYZE reading_rollups_daily`)
	return db, clientID, sensors
}

// BenchmarkReadPaths measures the issue-4 read paths against references
// measured in the same run and prints a report. Run it once:
//
//	go test -run '^$' -bench ReadPaths -benchtime 1x -timeout 60m ./shared/readings/
//
// With TEMPWATCH_BENCH_ONLY=daily it stops after the daily averages.
func BenchmarkReadPaths(b *testing.B) {
	db, clientID, sensors := mustBenchDB(b)
	ctx := context.Background()
	store := postgres.NewReadingStore(db)
	from := time.Date(benchYear, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(benchYear, 12, 31, 0, 0, 0, 0, time.UTC)
	rows := func(q string, args ...any) int {
		rs, err := db.Query(ctx, q, args...)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rs.Next() {
			n++
		}
		if rs.Err() != nil {
			b.Fatal(rs.Err())
		}
		return n
	}
	report := func(name string, s, ref stats) {
		fmt.Printf("%-58s p50 %9.2f ms  p95 %9.2f ms  (n=%d)", name, ms(s.p50), ms(s.p95), s.n)
		if ref.n > 0 {
			fmt.Printf("  = 1/%.0f of the reference (p50)", float64(ref.p50)/float64(s.p50))
		}
		fmt.Println()
	}
	fmt.Printf("\nread paths, %d sensors x 1 reading/10 s over %d (%s per sensor)\n", len(sensors), benchYear, "3,153,600")

	// Daily averages, one sensor-year.
	plainSQL := `SELECT sensor_id, (measured_at AT TIME ZONE $2)::date AS d, avg(value), min(value), max(value), count(*), min(measured_at), max(measured_at)
		FROM readings WHERE sensor_id = ANY($1) AND measured_at >= ($3::date::timestamp AT TIME ZONE $2) AND measured_at < (($4::date + 1)::timestamp AT TIME ZONE $2)
		GROUP BY 1, 2 ORDER BY 2 DESC, 1`
	one := []string{sensors[0]}
	plainOne := measure(3, func() { rows(plainSQL, one, benchTZ, from, to) })
	daily := func(base tempwatch.DailyAverageFilter) func() {
		return func() {
			f := base
			f.From, f.To, f.Limit = from, to, 500
			for {
				ds, err := store.DailyAverages(ctx, f)
				if err != nil {
					b.Fatal(err)
				}
				if len(ds) <= f.Limit {
					return
				}
				last := ds[f.Limit-1]
				f.BeforeDay, _ = time.Parse("2006-01-02", last.Day)
				f.BeforeSensor = last.SensorID
			}
		}
	}
	fmt.Println("\ndaily averages over a year (all pages of 500), computed (no cache):")
	report("plain GROUP BY over raw readings, 1 sensor", plainOne, stats{})
	report("rollups, 1 sensor, client zone (daily rollups)", measure(200, daily(tempwatch.DailyAverageFilter{SensorID: sensors[0], Timezone: benchTZ, ClientTimezone: benchTZ})), plainOne)
	report("rollups, 1 sensor, Asia/Kolkata (kept zone, daily rollups)", measure(200, daily(tempwatch.DailyAverageFilter{SensorID: sensors[0], Timezone: "Asia/Kolkata", ClientTimezone: benchTZ})), plainOne)
	plainClient := measure(2, func() { rows(plainSQL, sensors, benchTZ, from, to) })
	report(fmt.Sprintf("plain GROUP BY over raw readings, client of %d", len(sensors)), plainClient, stats{})
	report(fmt.Sprintf("rollups, client of %d, client zone (daily rollups)", len(sensors)), measure(100, daily(tempwatch.DailyAverageFilter{ClientID: clientID, Timezone: benchTZ, ClientTimezone: benchTZ})), plainClient)
	report(fmt.Sprintf("rollups, client of %d, client zone, first page only", len(sensors)), measure(200, func() {
		if _, err := store.DailyAverages(ctx, tempwatch.DailyAverageFilter{ClientID: clientID, Timezone: benchTZ, ClientTimezone: benchTZ,
			From: from, To: to, Limit: 500}); err != nil {
			b.Fatal(err)
		}
	}), plainClient)
	report(fmt.Sprintf("rollups, client of %d, Asia/Kolkata (kept zone, daily rollups)", len(sensors)), measure(100, daily(tempwatch.DailyAverageFilter{ClientID: clientID, Timezone: "Asia/Kolkata", ClientTimezone: benchTZ})), plainClient)
	// The first request in a zone not kept yet builds its days (migration
	// 032): measured from an unregistered zone each time.
	const newZone = "America/St_Johns"
	unkeep := func(zones ...string) {
		for _, q := range []string{`DELETE FROM rollup_zones WHERE client_id = $1 AND timezone = ANY($2)`,
			`DELETE FROM reading_rollups_daily WHERE sensor_id IN (SELECT id FROM sensors WHERE client_id = $1) AND timezone = ANY($2)`} {
			if _, err := db.Exec(ctx, q, clientID, zones); err != nil {
				b.Fatal(err)
			}
		}
	}
	var firsts []time.Duration
	for range 5 {
		unkeep(newZone)
		t := time.Now()
		daily(tempwatch.DailyAverageFilter{ClientID: clientID, Timezone: newZone, ClientTimezone: benchTZ})()
		firsts = append(firsts, time.Since(t))
	}
	unkeep(newZone)
	slices.Sort(firsts)
	report(fmt.Sprintf("rollups, client of %d, first request in a new zone (builds it)", len(sensors)), stats{p50: firsts[2], p95: firsts[4], n: 5}, plainClient)
	// A client with max_rollup_zones() extra zones kept: a further zone is
	// grouped from the 15-minute rollups, a window of days per page.
	var fillers []string
	for i := 1; ; i++ {
		var kept bool
		zone := fmt.Sprintf("Etc/GMT-%d", i)
		if err := db.QueryRow(ctx, `SELECT keep_rollup_zone($1, $2)`, clientID, zone).Scan(&kept); err != nil {
			b.Fatal(err)
		}
		if !kept {
			break
		}
		fillers = append(fillers, zone)
	}
	report(fmt.Sprintf("rollups, client of %d, zone beyond the kept ones (15-min rollups)", len(sensors)), measure(10, daily(tempwatch.DailyAverageFilter{ClientID: clientID, Timezone: "Asia/Kathmandu", ClientTimezone: benchTZ})), plainClient)
	report("rollups, 1 sensor, zone beyond the kept ones (15-min rollups)", measure(30, daily(tempwatch.DailyAverageFilter{SensorID: sensors[0], Timezone: "Asia/Kathmandu", ClientTimezone: benchTZ})), plainOne)
	unkeep(fillers...)
	if os.Getenv("TEMPWATCH_BENCH_ONLY") == "daily" {
		return
	}

	// Readings page at depth 1,000,000 vs the first page, through the handler.
	rdb, prefix := redistest.MustClient(b)
	admin := tempwatch.Principal{UserID: "bench", Role: tempwatch.RoleAdmin}
	withAdmin := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(tempwatch.WithPrincipal(r.Context(), admin)))
		})
	}
	log := slog.New(slog.DiscardHandler)
	h := withAdmin(readings.NewHandler(store, redis.NewCache(redis.New(rdb, redis.Options{Prefix: prefix}), redis.CacheOptions{Store: store}), log))
	var deepAt time.Time
	var deepID int64
	if err := db.QueryRow(ctx, `SELECT created_at, id FROM readings WHERE sensor_id = $1 ORDER BY created_at DESC, id DESC OFFSET 999999 LIMIT 1`, sensors[0]).Scan(&deepAt, &deepID); err != nil {
		b.Fatal(err)
	}
	deepCursor := httpapi.EncodeCursor(tempwatch.Cursor{CreatedAt: deepAt, ID: strconv.FormatInt(deepID, 10)})
	page := func(q string) func() {
		return func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/sensors/"+sensors[0]+"/readings?limit=50"+q, nil))
			if w.Code != http.StatusOK {
				b.Fatalf("page: %d %s", w.Code, w.Body)
			}
		}
	}
	fmt.Println("\nreadings page (limit 50) through the handler:")
	first := measure(500, page(""))
	deep := measure(500, page("&cursor="+deepCursor))
	report("first page", first, stats{})
	report("page at depth 1,000,000", deep, stats{})
	fmt.Printf("%-58s %.2fx (p50), %.2fx (p95)\n", "depth 1,000,000 / first page", float64(deep.p50)/float64(first.p50), float64(deep.p95)/float64(first.p95))

	// Latest-reading route over HTTP (httptest server, keep-alive) vs a
	// trivial handler returning constant JSON of the same size.
	latestPath := "/sensors/" + sensors[0] + "/readings/latest"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, latestPath, nil))
	body := w.Body.Bytes()
	trivial := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	local := withAdmin(readings.NewHandler(store, redis.NewCache(redis.New(rdb, redis.Options{Prefix: prefix}), redis.CacheOptions{Store: store, LocalTTL: time.Minute}), log))
	fmt.Printf("\nlatest-reading route, %d-byte body, %d concurrent keep-alive clients, %s each:\n", len(body), latestClients, latestDuration)
	ref := throughput(b, trivial, latestPath)
	viaRedis := throughput(b, h, latestPath)
	viaLocal := throughput(b, local, latestPath)
	fmt.Printf("%-58s %9.0f req/s\n", "trivial net/http handler (constant JSON)", ref)
	fmt.Printf("%-58s %9.0f req/s  = %.2fx\n", "handler, latest from Redis (LocalTTL 0, the default)", viaRedis, viaRedis/ref)
	fmt.Printf("%-58s %9.0f req/s  = %.2fx\n", "handler, latest from process memory (LocalTTL 1m)", viaLocal, viaLocal/ref)
}

const (
	latestClients  = 16
	latestDuration = 3 * time.Second
)

// throughput serves h over HTTP and returns the requests per second that
// latestClients keep-alive clients get from path.
func throughput(b *testing.B, h http.Handler, path string) float64 {
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: latestClients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var n atomic.Int64
	deadline := time.Now().Add(latestDuration)
	var wg sync.WaitGroup
	for range latestClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				res, err := client.Get(srv.URL + path)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Errorf("GET %s: %d", path, res.StatusCode)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / latestDuration.Seconds()
}

type stats struct {
	p50, p95 time.Duration
	n        int
}

func measure(n int, f func()) stats {
	f() // warm up
	ds := make([]time.Duration, n)
	for i := range ds {
		t := time.Now()
		f()
		ds[i] = time.Since(t)
	}
	slices.Sort(ds)
	return stats{p50: ds[n/2], p95: ds[min(n-1, n*95/100)], n: n}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
