package statistics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/readings"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/statistics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

type env struct {
	db    *pgxpool.Pool
	cache *redis.Cache
	h     http.Handler // statistics and readings routes
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := pgtest.MustDB(t)
	rdb, prefix := redistest.MustClient(t)
	store := postgres.NewReadingStore(db)
	c := redis.NewCache(redis.New(rdb, redis.Options{Prefix: prefix}), redis.CacheOptions{Store: store})
	log := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	mux.Handle("/sensors/{id}/readings", readings.NewHandler(store, c, log))
	mux.Handle("/sensors/{id}/readings/latest", readings.NewHandler(store, c, log))
	mux.Handle("/", statistics.NewHandler(store, c, log))
	return &env{db: db, cache: c, h: mux}
}

func (e *env) get(t *testing.T, p *tempwatch.Principal, path string, q url.Values) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path+"?"+q.Encode(), nil)
	if p != nil {
		r = r.WithContext(tempwatch.WithPrincipal(r.Context(), *p))
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

type dailyPage struct {
	Timezone   string                   `json:"timezone"`
	Items      []tempwatch.DailyAverage `json:"items"`
	HasMore    bool                     `json:"has_more"`
	NextCursor string                   `json:"next_cursor"`
}

// allDays walks every page of a daily-averages route.
func (e *env) allDays(t *testing.T, p tempwatch.Principal, path string, q url.Values) []tempwatch.DailyAverage {
	t.Helper()
	var out []tempwatch.DailyAverage
	for range 1000 {
		w := e.get(t, &p, path, q)
		require.Equal(t, http.StatusOK, w.Code, "GET %s?%s: %s", path, q.Encode(), w.Body)
		var pg dailyPage
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &pg))
		out = append(out, pg.Items...)
		if !pg.HasMore {
			return out
		}
		q.Set("cursor", pg.NextCursor)
	}
	t.Fatal("too many pages")
	return nil
}

// bruteForce computes the daily averages from the raw readings of sensors.
func bruteForce(t *testing.T, db *pgxpool.Pool, tz string, sensors ...string) []tempwatch.DailyAverage {
	t.Helper()
	loc, err := time.LoadLocation(tz)
	require.NoError(t, err)
	rows, err := db.Query(context.Background(), `SELECT sensor_id, value, measured_at FROM readings WHERE sensor_id = ANY($1)`, sensors)
	require.NoError(t, err)
	type key struct{ sensor, day string }
	sums := map[key]*tempwatch.DailyAverage{}
	for rows.Next() {
		var s string
		var v float64
		var at time.Time
		require.NoError(t, rows.Scan(&s, &v, &at))
		k := key{s, at.In(loc).Format("2006-01-02")}
		d := sums[k]
		if d == nil {
			d = &tempwatch.DailyAverage{SensorID: s, Day: k.day, Min: v, Max: v, FirstAt: at, LastAt: at}
			sums[k] = d
		}
		d.Count++
		d.Avg += v // sum until the end
		d.Min, d.Max = math.Min(d.Min, v), math.Max(d.Max, v)
		if at.Before(d.FirstAt) {
			d.FirstAt = at
		}
		if at.After(d.LastAt) {
			d.LastAt = at
		}
	}
	require.NoError(t, rows.Err())
	var out []tempwatch.DailyAverage
	for _, d := range sums {
		d.Avg /= float64(d.Count)
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Day != out[j].Day {
			return out[i].Day > out[j].Day
		}
		return out[i].SensorID < out[j].SensorID
	})
	return out
}

func assertSameDays(t *testing.T, want, got []tempwatch.DailyAverage, msg string) {
	t.Helper()
	require.Equal(t, len(want), len(got), "%s: number of days", msg)
	for i := range want {
		w, g := want[i], got[i]
		ok := w.SensorID == g.SensorID && w.Day == g.Day && w.Count == g.Count &&
			math.Abs(w.Avg-g.Avg) < 1e-9 && w.Min == g.Min && w.Max == g.Max &&
			w.FirstAt.Equal(g.FirstAt) && w.LastAt.Equal(g.LastAt)
		if !ok {
			t.Fatalf("%s: day %d = %+v, want %+v", msg, i, g, w)
		}
	}
}

// spans are the periods readings are generated in: DST change days of
// Europe/Berlin (2025) and America/Sao_Paulo (2018-19, when it still had
// DST, starting at midnight), and ordinary days.
var spans = []struct{ from, to string }{
	{"2018-11-02T12:00:00Z", "2018-11-06T00:00:00Z"},
	{"2019-02-15T12:00:00Z", "2019-02-19T00:00:00Z"},
	{"2025-03-28T12:00:00Z", "2025-04-01T00:00:00Z"},
	{"2025-10-24T12:00:00Z", "2025-10-28T00:00:00Z"},
}

var zones = []string{"UTC", "America/Sao_Paulo", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu"}

// genReadings returns readings every few minutes over spans, plus readings a
// second either side of every local midnight in zones.
func genReadings(rng *rand.Rand, sensor string) []tempwatch.Reading {
	seen := map[time.Time]bool{}
	var out []tempwatch.Reading
	add := func(at time.Time) {
		at = at.Truncate(time.Microsecond)
		if !seen[at] {
			seen[at] = true
			out = append(out, tempwatch.Reading{SensorID: sensor, MeasuredAt: at, Value: math.Round(rng.NormFloat64()*500+2000) / 100})
		}
	}
	for _, sp := range spans {
		from, _ := time.Parse(time.RFC3339, sp.from)
		to, _ := time.Parse(time.RFC3339, sp.to)
		for at := from; at.Before(to); at = at.Add(time.Duration(3+rng.IntN(9)) * time.Minute) {
			add(at.Add(time.Duration(rng.IntN(60)) * time.Second))
		}
		for _, z := range zones {
			loc, _ := time.LoadLocation(z)
			for d := from.In(loc); d.Before(to); d = d.AddDate(0, 0, 1) {
				y, m, dd := d.Date()
				mid := time.Date(y, m, dd, 0, 0, 0, 0, loc)
				add(mid.Add(-time.Second))
				add(mid)
				add(mid.Add(time.Second))
			}
		}
	}
	return out
}

// ingest writes rs the way the ingest function does, in batches, late
// readings (older measured_at) arriving after newer ones.
func ingest(t *testing.T, db *pgxpool.Pool, rs []tempwatch.Reading, rng *rand.Rand) {
	t.Helper()
	rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	w := postgres.NewReadingStore(db)
	for i := 0; i < len(rs); i += 200 {
		batch := append([]tempwatch.Reading(nil), rs[i:min(i+200, len(rs))]...)
		sort.Slice(batch, func(a, b int) bool { return batch[a].MeasuredAt.Before(batch[b].MeasuredAt) })
		_, err := w.WriteReadings(context.Background(), batch)
		require.NoError(t, err)
	}
}

// correctAndDelete changes and deletes readings as the measurements API does:
// write, then recompute_rollup for each touched bucket.
func correctAndDelete(t *testing.T, db *pgxpool.Pool, sensor string) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		// Corrections: every 7th reading, some up, some down, so min/max move both ways.
		`UPDATE readings SET value = value + CASE WHEN id % 2 = 0 THEN 40 ELSE -40 END
			WHERE sensor_id = $1 AND id % 7 = 0 RETURNING rollup_bucket(measured_at)`,
		// Deletes: every 5th reading, and every reading of three hours.
		`DELETE FROM readings WHERE sensor_id = $1 AND (id % 5 = 0
			OR measured_at BETWEEN '2025-03-30T00:00:00Z' AND '2025-03-30T03:00:00Z') RETURNING rollup_bucket(measured_at)`,
	} {
		tx, err := db.Begin(ctx)
		require.NoError(t, err)
		rows, _ := tx.Query(ctx, q, sensor)
		buckets, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		require.NoError(t, err)
		require.NotEmpty(t, buckets)
		for _, b := range buckets {
			_, err := tx.Exec(ctx, `SELECT recompute_rollup($1, $2)`, sensor, b)
			require.NoError(t, err)
		}
		require.NoError(t, tx.Commit(ctx))
	}
}

func TestDailyAveragesMatchBruteForce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(4, 4))
	admin := tempwatch.Principal{UserID: "u", Role: tempwatch.RoleAdmin}
	all := url.Values{"from": {"2018-11-01"}, "to": {"2019-02-20"}}
	all2 := url.Values{"from": {"2025-03-27"}, "to": {"2025-10-29"}}

	type owned struct{ client, sensor, tz string }
	var sensors []owned
	var later [][]tempwatch.Reading
	for i, tz := range zones {
		c := pgtest.MustClient(t, e.db, fmt.Sprintf("c%d", i), tz)
		s := pgtest.MustSensor(t, e.db, c, "d1", fmt.Sprintf("key-%d", i))
		sensors = append(sensors, owned{c, s, tz})
		rs := genReadings(rng, s)
		rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		n := len(rs) * 4 / 5
		ingest(t, e.db, rs[:n], rng)
		later = append(later, rs[n:])
	}
	check := func(stage string) {
		for _, o := range sensors {
			// The client's own zone and the others it was asked in (first
			// check) read daily rollups kept by the trigger (the baseline migration).
			for _, tz := range zones {
				for _, rangeQ := range []url.Values{all, all2} {
					q := url.Values{"tz": {tz}, "limit": {"3"}, "from": rangeQ["from"], "to": rangeQ["to"]}
					if tz == o.tz && rng.IntN(2) == 0 {
						q.Del("tz") // the default is the client's zone
					}
					got := e.allDays(t, admin, "/sensors/"+o.sensor+"/daily-averages", q)
					want := bruteForce(t, e.db, tz, o.sensor)
					want = inRange(want, rangeQ.Get("from"), rangeQ.Get("to"))
					assertSameDays(t, want, got, fmt.Sprintf("%s: sensor of %s in %s %v", stage, o.tz, tz, q))
				}
			}
		}
	}
	check("after ingest")

	// Late readings, into days already kept in every zone.
	for i := range sensors {
		ingest(t, e.db, later[i], rng)
		e.cache.InvalidateSensor(context.Background(), sensors[i].sensor)
	}
	check("after late readings")

	for _, o := range sensors {
		correctAndDelete(t, e.db, o.sensor)
		e.cache.InvalidateSensor(context.Background(), o.sensor)
	}
	check("after corrections and deletes")

	// A client changing zone: its daily rollups are rebuilt in the new zone.
	_, err := e.db.Exec(context.Background(), `UPDATE clients SET timezone = 'Asia/Kathmandu' WHERE id = $1`, sensors[2].client)
	require.NoError(t, err)
	got := e.allDays(t, admin, "/clients/"+sensors[2].client+"/daily-averages", url.Values{"tz": {"Asia/Kathmandu"}, "from": {"2025-03-27"}, "to": {"2025-10-29"}})
	assertSameDays(t, inRange(bruteForce(t, e.db, "Asia/Kathmandu", sensors[2].sensor), "2025-03-27", "2025-10-29"), got, "after zone change")
	var daily int
	require.NoError(t, e.db.QueryRow(context.Background(),
		`SELECT count(*) FROM reading_rollups_daily WHERE sensor_id = $1 AND timezone = 'Asia/Kathmandu'`, sensors[2].sensor).Scan(&daily))
	assert.Positive(t, daily, "daily rollups rebuilt in the new zone")
}

// TestDailyAveragesZonesBeyondKept asks one client's days in more zones than
// are kept for it: the first max_rollup_zones() are kept as daily rollups,
// the rest grouped from 15-minute rollups, and all match the raw readings
// before and after late readings, corrections and deletes.
func TestDailyAveragesZonesBeyondKept(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	admin := tempwatch.Principal{UserID: "u", Role: tempwatch.RoleAdmin}
	c := pgtest.MustClient(t, e.db, "many", "UTC")
	var ids []string
	var later []tempwatch.Reading
	for i := range 2 {
		s := pgtest.MustSensor(t, e.db, c, fmt.Sprintf("d%d", i), fmt.Sprintf("k%d", i))
		ids = append(ids, s)
		rs := genReadings(rng, s)
		rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		ingest(t, e.db, rs[:len(rs)/2], rng)
		later = append(later, rs[len(rs)/2:]...)
	}
	var maxZones int
	require.NoError(t, e.db.QueryRow(ctx, `SELECT max_rollup_zones()`).Scan(&maxZones))
	others := []string{"America/Sao_Paulo", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns"}
	require.Greater(t, len(others), maxZones, "the test asks in more zones than are kept")
	check := func(stage string) {
		for _, tz := range others {
			q := func() url.Values {
				return url.Values{"tz": {tz}, "limit": {"5"}, "from": {"2025-03-27"}, "to": {"2025-10-29"}}
			}
			got := e.allDays(t, admin, "/clients/"+c+"/daily-averages", q())
			assertSameDays(t, inRange(bruteForce(t, e.db, tz, ids...), "2025-03-27", "2025-10-29"), got, stage+": client in "+tz)
			got = e.allDays(t, admin, "/sensors/"+ids[1]+"/daily-averages", q())
			assertSameDays(t, inRange(bruteForce(t, e.db, tz, ids[1]), "2025-03-27", "2025-10-29"), got, stage+": sensor in "+tz)
		}
	}
	check("after ingest")
	var kept int
	require.NoError(t, e.db.QueryRow(ctx, `SELECT count(*) FROM rollup_zones WHERE client_id = $1`, c).Scan(&kept))
	assert.Equal(t, maxZones, kept, "extra zones kept")

	ingest(t, e.db, later, rng)
	for _, s := range ids {
		correctAndDelete(t, e.db, s)
		e.cache.InvalidateSensor(ctx, s)
	}
	check("after late readings, corrections and deletes")

	// The client moving into a kept zone keeps its days; the old zone's go.
	_, err := e.db.Exec(ctx, `UPDATE clients SET timezone = $2 WHERE id = $1`, c, others[0])
	require.NoError(t, err)
	got := e.allDays(t, admin, "/clients/"+c+"/daily-averages", url.Values{"from": {"2025-03-27"}, "to": {"2025-10-29"}})
	assertSameDays(t, inRange(bruteForce(t, e.db, others[0], ids...), "2025-03-27", "2025-10-29"), got, "after moving into a kept zone")
	var utcDays int
	require.NoError(t, e.db.QueryRow(ctx, `SELECT count(*) FROM reading_rollups_daily WHERE sensor_id = ANY($1) AND timezone = 'UTC'`, ids).Scan(&utcDays))
	assert.Zero(t, utcDays, "days of the zone no longer kept")
}

func inRange(ds []tempwatch.DailyAverage, from, to string) []tempwatch.DailyAverage {
	var out []tempwatch.DailyAverage
	for _, d := range ds {
		if d.Day >= from && d.Day <= to {
			out = append(out, d)
		}
	}
	return out
}

func TestClientDailyAveragesPerSensor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(9, 9))
	c := pgtest.MustClient(t, e.db, "acme", "Asia/Kolkata")
	var ids []string
	for i := range 3 {
		s := pgtest.MustSensor(t, e.db, c, fmt.Sprintf("d%d", i), fmt.Sprintf("k%d", i))
		ids = append(ids, s)
		ingest(t, e.db, genReadings(rng, s)[:300*(i+1)], rng)
	}
	viewer := tempwatch.Principal{UserID: "v", ClientID: c, Role: tempwatch.RoleViewer}
	for _, tz := range []string{"", "Europe/Berlin"} {
		q := url.Values{"from": {"2018-11-01"}, "to": {"2019-02-20"}, "limit": {"2"}}
		zone := "Asia/Kolkata"
		if tz != "" {
			q.Set("tz", tz)
			zone = tz
		}
		got := e.allDays(t, viewer, "/clients/"+c+"/daily-averages", q)
		assertSameDays(t, inRange(bruteForce(t, e.db, zone, ids...), "2018-11-01", "2019-02-20"), got, "client in "+zone)
	}
}

func TestDailyAveragesBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := pgtest.MustClient(t, e.db, "acme", "UTC")
	s := pgtest.MustSensor(t, e.db, c, "d1", "k1")
	admin := tempwatch.Principal{UserID: "u", Role: tempwatch.RoleAdmin}
	tests := []struct {
		name  string
		q     url.Values
		field string
	}{
		{"bad zone", url.Values{"tz": {"Mars/Olympus"}}, "tz"},
		{"reversed range", url.Values{"from": {"2025-02-01"}, "to": {"2025-01-01"}}, "to"},
		{"bad date", url.Values{"from": {"01/02/2025"}}, "from"},
		// Go parses year 0000; PostgreSQL has no such date (review h-revb).
		{"year zero", url.Values{"from": {"0000-01-01"}, "to": {"0000-01-05"}}, "from"},
		{"year zero to", url.Values{"from": {"2025-01-01"}, "to": {"0000-01-05"}}, "to"},
		{"range too long", url.Values{"from": {"2023-01-01"}, "to": {"2025-01-01"}}, "from"},
		{"bad limit", url.Values{"limit": {"0"}}, "limit"},
		{"bad cursor", url.Values{"cursor": {"nope"}}, "cursor"},
		{"ΔH not a number", url.Values{"mkt_delta_h": {"83,144"}}, "mkt_delta_h"},
		{"ΔH too small", url.Values{"mkt_delta_h": {"19.99"}}, "mkt_delta_h"},
		{"ΔH too large", url.Values{"mkt_delta_h": {"1e400"}}, "mkt_delta_h"},
		{"ΔH NaN", url.Values{"mkt_delta_h": {"NaN"}}, "mkt_delta_h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/sensors/" + s + "/daily-averages", "/clients/" + c + "/daily-averages"} {
				w := e.get(t, &admin, path, tt.q)
				require.Equal(t, http.StatusBadRequest, w.Code, "GET %s?%s: %s", path, tt.q.Encode(), w.Body)
				var p struct{ Errors map[string]string }
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
				assert.Contains(t, p.Errors, tt.field, "body %s", w.Body)
			}
		})
	}
}

// TestTenantIsolation checks every read route for every role: the own
// client's users (viewers too) read, another client's users get 404, an
// anonymous caller 401.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := pgtest.MustClient(t, e.db, "a", "UTC")
	b := pgtest.MustClient(t, e.db, "b", "UTC")
	sa := pgtest.MustSensor(t, e.db, a, "d1", "ka")
	ingest(t, e.db, []tempwatch.Reading{{SensorID: sa, Value: 21.5, MeasuredAt: time.Now().Add(-time.Hour)}}, rand.New(rand.NewPCG(1, 1)))
	routes := []string{
		"/sensors/" + sa + "/readings",
		"/sensors/" + sa + "/readings/latest",
		"/sensors/" + sa + "/daily-averages",
		"/clients/" + a + "/daily-averages",
	}
	p := func(role, client string) *tempwatch.Principal {
		return &tempwatch.Principal{UserID: "u", Role: role, ClientID: client}
	}
	tests := []struct {
		name string
		p    *tempwatch.Principal
		want int
	}{
		{"admin", p(tempwatch.RoleAdmin, ""), http.StatusOK},
		{"client admin of owner", p(tempwatch.RoleClientAdmin, a), http.StatusOK},
		{"viewer of owner", p(tempwatch.RoleViewer, a), http.StatusOK},
		{"client admin of other", p(tempwatch.RoleClientAdmin, b), http.StatusNotFound},
		{"viewer of other", p(tempwatch.RoleViewer, b), http.StatusNotFound},
		{"anonymous", nil, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		for _, route := range routes {
			t.Run(tt.name+" "+route, func(t *testing.T) {
				w := e.get(t, tt.p, route, nil)
				assert.Equal(t, tt.want, w.Code, "GET %s: %s", route, w.Body)
				if tt.want == http.StatusOK {
					assert.Contains(t, w.Body.String(), "21.5")
				}
			})
		}
	}
}
