package statistics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// limitDay is what the brute force finds for one period (a local day or a
// 15-minute bucket) of one sensor.
type limitDay struct {
	aboveUS, belowUS int64
	n                int64
	mktTerms         float64 // sum of exp(-dH/(R*T)), unscaled
}

// periods cut time: name says which period holds t, next where it ends.
type periods struct {
	name func(time.Time) string
	next func(time.Time) time.Time
}

// bruteLimits computes time above and below the sensor's limits and the
// MKT terms per period from its raw readings, by the definition: each
// reading holds its value from its measured time until the next reading,
// at most silence_after; a hold is cut where its period ends.
func bruteLimits(t *testing.T, db *pgxpool.Pool, sensor string, ps periods) map[string]*limitDay {
	t.Helper()
	ctx := context.Background()
	var low, high *float64
	var silenceUS int64
	require.NoError(t, db.QueryRow(ctx, `SELECT alert_low, alert_high, (extract(epoch FROM silence_after) * 1000000)::bigint
		FROM sensors WHERE id = $1`, sensor).Scan(&low, &high, &silenceUS))
	rows, err := db.Query(ctx, `SELECT value, measured_at FROM readings WHERE sensor_id = $1 ORDER BY measured_at`, sensor)
	require.NoError(t, err)
	type reading struct {
		v  float64
		at time.Time
	}
	var rs []reading
	for rows.Next() {
		var r reading
		require.NoError(t, rows.Scan(&r.v, &r.at))
		rs = append(rs, r)
	}
	require.NoError(t, rows.Err())
	out := map[string]*limitDay{}
	get := func(k string) *limitDay {
		if out[k] == nil {
			out[k] = &limitDay{}
		}
		return out[k]
	}
	const dHOverR = 83144.0 / 8.3144598
	for i, r := range rs {
		d := get(ps.name(r.at))
		d.n++
		d.mktTerms += math.Exp(-dHOverR / (r.v + 273.15))
		end := r.at.Add(time.Duration(silenceUS) * time.Microsecond)
		if i+1 < len(rs) && rs[i+1].at.Before(end) {
			end = rs[i+1].at
		}
		above, below := high != nil && r.v > *high, low != nil && r.v < *low
		if !above && !below {
			continue
		}
		for at := r.at; at.Before(end); {
			cut := ps.next(at)
			if end.Before(cut) {
				cut = end
			}
			p := get(ps.name(at))
			if above {
				p.aboveUS += cut.Sub(at).Microseconds()
			} else {
				p.belowUS += cut.Sub(at).Microseconds()
			}
			at = cut
		}
	}
	return out
}

func localDays(loc *time.Location) periods {
	return periods{func(t time.Time) string { return t.In(loc).Format(time.DateOnly) },
		func(t time.Time) time.Time {
			// A midnight that daylight saving skips (America/Sao_Paulo
			// until 2019) is a time Go may place before the skip: the next
			// day starts at the first quarter hour of another date.
			y, m, d := t.In(loc).Date()
			next := time.Date(y, m, d+1, 0, 0, 0, 0, loc)
			for !next.After(t) || next.In(loc).Day() == d {
				next = next.Add(15 * time.Minute)
			}
			return next
		}}
}

func buckets() periods {
	return periods{func(t time.Time) string { return t.Truncate(15 * time.Minute).UTC().Format(time.RFC3339) },
		func(t time.Time) time.Time { return t.Truncate(15 * time.Minute).Add(15 * time.Minute) }}
}

// assertLimitRollupsExact compares the sensor's 15-minute limit rollups,
// days without readings included, with the brute force.
func assertLimitRollupsExact(t *testing.T, db *pgxpool.Pool, sensor, msg string) {
	t.Helper()
	want := map[string][2]int64{}
	for k, d := range bruteLimits(t, db, sensor, buckets()) {
		if d.aboveUS != 0 || d.belowUS != 0 {
			want[k] = [2]int64{d.aboveUS, d.belowUS}
		}
	}
	rows, err := db.Query(context.Background(), `SELECT bucket_start, above_us, below_us FROM limit_rollups WHERE sensor_id = $1`, sensor)
	require.NoError(t, err)
	got := map[string][2]int64{}
	for rows.Next() {
		var b time.Time
		var a, bl int64
		require.NoError(t, rows.Scan(&b, &a, &bl))
		got[b.UTC().Format(time.RFC3339)] = [2]int64{a, bl}
	}
	require.NoError(t, rows.Err())
	require.Equal(t, want, got, "%s: limit rollups of sensor %s", msg, sensor)
}

// assertDayStats checks the minutes and MKT of every day the API listed
// against the brute force in tz.
func assertDayStats(t *testing.T, db *pgxpool.Pool, tz string, got []tempwatch.DailyAverage, msg string) {
	t.Helper()
	loc, err := time.LoadLocation(tz)
	require.NoError(t, err)
	bySensor := map[string]map[string]*limitDay{}
	for _, d := range got {
		if bySensor[d.SensorID] == nil {
			bySensor[d.SensorID] = bruteLimits(t, db, d.SensorID, localDays(loc))
		}
	}
	for _, d := range got {
		var low, high *float64
		require.NoError(t, db.QueryRow(context.Background(), `SELECT alert_low, alert_high FROM sensors WHERE id = $1`, d.SensorID).Scan(&low, &high))
		w := bySensor[d.SensorID][d.Day]
		require.NotNil(t, w, "%s: day %s of %s has no readings", msg, d.Day, d.SensorID)
		minutes := func(us int64, limit *float64, got *float64, name string) {
			if limit == nil {
				assert.Nil(t, got, "%s: %s of %s on %s without a limit", msg, name, d.SensorID, d.Day)
				return
			}
			if assert.NotNil(t, got, "%s: %s of %s on %s", msg, name, d.SensorID, d.Day) {
				assert.InDelta(t, float64(us)/6e7, *got, 1e-9, "%s: %s of %s on %s in %s", msg, name, d.SensorID, d.Day, tz)
			}
		}
		minutes(w.aboveUS, high, d.MinutesAbove, "minutes_above")
		minutes(w.belowUS, low, d.MinutesBelow, "minutes_below")
		mkt := 83144.0/8.3144598/-math.Log(w.mktTerms/float64(w.n)) - 273.15
		if assert.NotNil(t, d.MKT, "%s: mkt of %s on %s", msg, d.SensorID, d.Day) {
			assert.InDelta(t, mkt, *d.MKT, 1e-9, "%s: mkt of %s on %s in %s", msg, d.SensorID, d.Day, tz)
		}
	}
}

// TestLimitsAndMKTMatchBruteForce keeps sensors with limits (one with a
// high limit only) and different silence thresholds in clients of zones
// with DST and half- and quarter-hour offsets, through late readings,
// duplicates, corrections, deletions, limit changes, a zone change and
// limits removed; after each stage the 15-minute limit rollups and every
// day the API lists, in kept and in grouped zones, match the brute force.
func TestLimitsAndMKTMatchBruteForce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 13))
	admin := tempwatch.Principal{UserID: "u", Role: tempwatch.RoleAdmin}
	type owned struct{ client, sensor, tz string }
	var sensors []owned
	var later [][]tempwatch.Reading
	begin := time.Now()
	silences := []string{"5 minutes", "15 minutes", "2 hours", "1 minute", "7 minutes"}
	for i, tz := range zones {
		c := pgtest.MustClient(t, e.db, fmt.Sprintf("c%d", i), tz)
		s := pgtest.MustSensor(t, e.db, c, "d1", fmt.Sprintf("key-%d", i))
		low := any(15.0)
		if i == 2 {
			low = nil
		}
		_, err := e.db.Exec(ctx, `UPDATE sensors SET alert_low = $2, alert_high = 25, silence_after = $3 WHERE id = $1`, s, low, silences[i])
		require.NoError(t, err)
		sensors = append(sensors, owned{c, s, tz})
		rs := genReadings(rng, s)
		rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		n := len(rs) * 3 / 5
		ingest(t, e.db, rs[:n], rng)
		// Duplicates: a tenth of what is stored, sent again with other values.
		var dups []tempwatch.Reading
		for _, r := range rs[:n/10] {
			r.Value += 30
			dups = append(dups, r)
		}
		ingest(t, e.db, dups, rng)
		later = append(later, rs[n:])
	}
	t.Logf("ingested in %s", time.Since(begin))
	askZones := append(append([]string(nil), zones...), "Australia/Lord_Howe", "Pacific/Chatham")
	check := func(stage string) {
		start := time.Now()
		defer func() { t.Logf("%s: checked in %s", stage, time.Since(start)) }()
		for _, o := range sensors {
			assertLimitRollupsExact(t, e.db, o.sensor, stage)
			for _, tz := range askZones {
				for _, r := range []url.Values{{"from": {"2018-11-01"}, "to": {"2019-02-20"}}, {"from": {"2025-03-27"}, "to": {"2025-10-29"}}} {
					q := url.Values{"tz": {tz}, "limit": {"50"}, "from": r["from"], "to": r["to"]}
					got := e.allDays(t, admin, "/sensors/"+o.sensor+"/daily-averages", q)
					require.NotEmpty(t, got, "%s: sensor of %s in %s %v", stage, o.tz, tz, q)
					assertDayStats(t, e.db, tz, got, fmt.Sprintf("%s: sensor of %s in %s", stage, o.tz, tz))
				}
			}
			got := e.allDays(t, admin, "/clients/"+o.client+"/daily-averages", url.Values{"limit": {"5"}, "from": {"2025-03-27"}, "to": {"2025-10-29"}})
			assertDayStats(t, e.db, o.tz, got, stage+": client of "+o.tz)
		}
	}
	check("after ingest and duplicates")

	for i := range sensors {
		ingest(t, e.db, later[i], rng)
	}
	invalidate := func() {
		for _, o := range sensors {
			e.cache.InvalidateSensor(ctx, o.sensor)
		}
	}
	invalidate()
	check("after late readings")

	for _, o := range sensors {
		correctAndDelete(t, e.db, o.sensor)
	}
	invalidate()
	check("after corrections and deletes")

	for i, o := range sensors {
		_, err := e.db.Exec(ctx, `UPDATE sensors SET alert_high = 23 + $2::int, silence_after = silence_after * 3 WHERE id = $1`, o.sensor, i%2)
		require.NoError(t, err)
	}
	invalidate()
	check("after limit changes")

	_, err := e.db.Exec(ctx, `UPDATE clients SET timezone = 'Asia/Kathmandu' WHERE id = $1`, sensors[2].client)
	require.NoError(t, err)
	sensors[2].tz = "Asia/Kathmandu"
	invalidate()
	check("after a zone change")

	_, err = e.db.Exec(ctx, `UPDATE sensors SET alert_low = NULL, alert_high = NULL WHERE id = $1`, sensors[0].sensor)
	require.NoError(t, err)
	invalidate()
	check("after limits removed")
	var rows int
	require.NoError(t, e.db.QueryRow(ctx, `SELECT count(*) FROM limit_rollups WHERE sensor_id = $1`, sensors[0].sensor).Scan(&rows))
	assert.Zero(t, rows, "limit rollups of a sensor without limits")
}

// TestLimitRollupsUnderConcurrentIngest writes one sensor's readings in
// two concurrent streams of batches, interleaved in time, so batches meet
// on neighbouring buckets whose holds reach into each other.
func TestLimitRollupsUnderConcurrentIngest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	c := pgtest.MustClient(t, e.db, "conc", "Europe/Berlin")
	s := pgtest.MustSensor(t, e.db, c, "d1", "k1")
	_, err := e.db.Exec(ctx, `UPDATE sensors SET alert_low = 18, alert_high = 22, silence_after = '20 minutes' WHERE id = $1`, s)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(21, 21))
	rs := genReadings(rng, s)
	sort.Slice(rs, func(i, j int) bool { return rs[i].MeasuredAt.Before(rs[j].MeasuredAt) })
	streams := [2][]tempwatch.Reading{}
	for i, r := range rs {
		streams[i%2] = append(streams[i%2], r)
	}
	w := postgres.NewReadingStore(e.db)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for k := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < len(streams[k]) && errs[k] == nil; i += 20 {
				_, errs[k] = w.WriteReadings(ctx, streams[k][i:min(i+20, len(streams[k]))])
			}
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	assertLimitRollupsExact(t, e.db, s, "after concurrent ingest")
	admin := tempwatch.Principal{UserID: "u", Role: tempwatch.RoleAdmin}
	got := e.allDays(t, admin, "/sensors/"+s+"/daily-averages", url.Values{"limit": {"50"}, "from": {"2025-03-27"}, "to": {"2025-10-29"}})
	require.NotEmpty(t, got)
	assertDayStats(t, e.db, "Europe/Berlin", got, "after concurrent ingest")
}

// TestLimitRollupsOfAppendingBatches ingests readings mostly in order, so
// most batches of a sensor only append and take migration 010's deltas:
// values crossing both limits, gaps shorter and longer than the silence
// cap, holds across buckets, one-reading batches. Every fifth batch also
// holds a late reading or a duplicate of one sensor, which sends that
// sensor down the rebuild while the others append. The limit rollups are
// compared with the brute force after every batch. One sensor has a low
// limit only, one a high limit only.
func TestLimitRollupsOfAppendingBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	c := pgtest.MustClient(t, e.db, "append", "Asia/Kolkata")
	silences := []string{"1 minute", "15 minutes", "2 hours"}
	var sensors []string
	for i, silence := range silences {
		s := pgtest.MustSensor(t, e.db, c, fmt.Sprintf("d%d", i), fmt.Sprintf("key-%d", i))
		low, high := any(18.0), any(22.0)
		switch i {
		case 1:
			high = nil // a low limit only
		case 2:
			low = nil // a high limit only
		}
		_, err := e.db.Exec(ctx, `UPDATE sensors SET alert_low = $2, alert_high = $3, silence_after = $4 WHERE id = $1`, s, low, high, silence)
		require.NoError(t, err)
		sensors = append(sensors, s)
	}
	rng := rand.New(rand.NewPCG(10, 10))
	next := make([]time.Time, len(sensors))
	var stored [][]tempwatch.Reading
	for i := range sensors {
		next[i] = time.Date(2025, 3, 30, 0, 0, 0, 0, time.UTC)
		stored = append(stored, nil)
	}
	w := postgres.NewReadingStore(e.db)
	for n := range 150 {
		var batch []tempwatch.Reading
		for i, s := range sensors {
			for range rng.IntN(8) {
				gap := time.Duration(1+rng.IntN(600)) * time.Second
				if rng.IntN(10) == 0 {
					gap = time.Duration(1+rng.IntN(3)) * time.Hour // silent meanwhile
				}
				next[i] = next[i].Add(gap + time.Duration(rng.IntN(1000))*time.Microsecond)
				r := tempwatch.Reading{SensorID: s, MeasuredAt: next[i], Value: 20 + float64(rng.IntN(9)-4)*1.25}
				batch = append(batch, r)
				stored[i] = append(stored[i], r)
			}
		}
		if k := rng.IntN(len(sensors)); n%5 == 4 && len(stored[k]) > 2 {
			old := stored[k][rng.IntN(len(stored[k])-1)]
			if n%10 == 4 {
				old.Value += 3 // a duplicate: ignored
			} else {
				old.MeasuredAt = old.MeasuredAt.Add(time.Millisecond) // late, between stored readings
			}
			batch = append(batch, old)
		}
		if len(batch) == 0 {
			continue
		}
		_, err := w.WriteReadings(ctx, batch)
		require.NoError(t, err, "batch %d", n)
		for _, s := range sensors {
			assertLimitRollupsExact(t, e.db, s, fmt.Sprintf("after batch %d", n))
		}
	}
	admin := tempwatch.Principal{UserID: "u", Role: tempwatch.RoleAdmin}
	got := e.allDays(t, admin, "/clients/"+c+"/daily-averages", url.Values{"limit": {"50"}, "from": {"2025-03-29"}, "to": {"2025-05-01"}})
	require.NotEmpty(t, got)
	assertDayStats(t, e.db, "Asia/Kolkata", got, "after appending batches")
}

// TestMKTOfConstantTemperature: the MKT of readings all at one temperature
// is that temperature, and a sensor without limits has null minutes.
func TestMKTOfConstantTemperature(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := pgtest.MustClient(t, e.db, "const", "UTC")
	s := pgtest.MustSensor(t, e.db, c, "d1", "k1")
	at := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	var rs []tempwatch.Reading
	for i := range 10 {
		rs = append(rs, tempwatch.Reading{SensorID: s, Value: 7.25, MeasuredAt: at.Add(time.Duration(i) * time.Minute)})
	}
	ingest(t, e.db, rs, rand.New(rand.NewPCG(1, 2)))
	admin := tempwatch.Principal{UserID: "u", Role: tempwatch.RoleAdmin}
	got := e.allDays(t, admin, "/sensors/"+s+"/daily-averages", url.Values{"from": {"2025-06-01"}, "to": {"2025-06-01"}})
	require.Len(t, got, 1)
	require.NotNil(t, got[0].MKT)
	assert.InDelta(t, 7.25, *got[0].MKT, 1e-9)
	assert.Nil(t, got[0].MinutesAbove)
	assert.Nil(t, got[0].MinutesBelow)
}

// bruteMKT is each local day's MKT in loc of the sensor's readings under
// ΔH dh (kJ/mol), by the definition.
func bruteMKT(t *testing.T, db *pgxpool.Pool, sensor string, loc *time.Location, dh float64) map[string]float64 {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT value, measured_at FROM readings WHERE sensor_id = $1`, sensor)
	require.NoError(t, err)
	dHOverR := dh * 1000 / 8.3144598
	terms, n := map[string]float64{}, map[string]int{}
	var v float64
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&v, &at}, func() error {
		day := at.In(loc).Format(time.DateOnly)
		terms[day] += math.Exp(-dHOverR / (v + 273.15))
		n[day]++
		return nil
	})
	require.NoError(t, err)
	out := map[string]float64{}
	for day, s := range terms {
		out[day] = dHOverR/-math.Log(s/float64(n[day])) - 273.15
	}
	return out
}

// TestMKTUnderAnotherDeltaH: the days' MKT under a ΔH the rollups do not
// keep, for a sensor and a client, in the client's zone and in others
// (kept and grouped days alike), matches the brute force; the default
// asked for by name is the kept figure.
func TestMKTUnderAnotherDeltaH(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(7, 83))
	c := pgtest.MustClient(t, e.db, "dh", "Asia/Kolkata")
	var sensors []string
	for i := range 2 {
		s := pgtest.MustSensor(t, e.db, c, fmt.Sprintf("d%d", i), fmt.Sprintf("dh-key-%d", i))
		ingest(t, e.db, genReadings(rng, s), rng)
		sensors = append(sensors, s)
	}
	admin := tempwatch.Principal{UserID: "u", Role: tempwatch.RoleAdmin}
	window := url.Values{"from": {"2025-03-27"}, "to": {"2025-10-29"}, "limit": {"3"}}
	with := func(tz, dh string) url.Values {
		q := url.Values{"tz": {tz}}
		for k, v := range window {
			q[k] = v
		}
		if dh != "" {
			q.Set("mkt_delta_h", dh)
		}
		return q
	}
	// The page says which ΔH its MKT is of.
	for dh, want := range map[string]float64{"": 83.144, "61.5": 61.5} {
		w := e.get(t, &admin, "/sensors/"+sensors[0]+"/daily-averages", with("UTC", dh))
		require.Equal(t, http.StatusOK, w.Code, w.Body)
		var page struct {
			MKTDeltaH float64 `json:"mkt_delta_h"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
		assert.Equal(t, want, page.MKTDeltaH, "mkt_delta_h=%q", dh)
	}
	for _, tz := range []string{"Asia/Kolkata", "America/Sao_Paulo", "Pacific/Chatham"} {
		loc, err := time.LoadLocation(tz)
		require.NoError(t, err)
		kept := e.allDays(t, admin, "/clients/"+c+"/daily-averages", with(tz, ""))
		require.NotEmpty(t, kept)
		assert.Equal(t, kept, e.allDays(t, admin, "/clients/"+c+"/daily-averages", with(tz, "83.144")), "the default by name in %s", tz)
		for _, dh := range []float64{20, 61.5, 300} {
			want := map[string]map[string]float64{}
			for _, s := range sensors {
				want[s] = bruteMKT(t, e.db, s, loc, dh)
			}
			q := with(tz, strconv.FormatFloat(dh, 'g', -1, 64))
			client := e.allDays(t, admin, "/clients/"+c+"/daily-averages", q)
			require.Len(t, client, len(kept), "the same days in %s under ΔH %g", tz, dh)
			sensor := e.allDays(t, admin, "/sensors/"+sensors[1]+"/daily-averages", q)
			require.NotEmpty(t, sensor)
			for _, d := range append(client, sensor...) {
				if assert.NotNil(t, d.MKT, "mkt of %s on %s in %s under ΔH %g", d.SensorID, d.Day, tz, dh) {
					assert.InDelta(t, want[d.SensorID][d.Day], *d.MKT, 1e-9, "mkt of %s on %s in %s under ΔH %g", d.SensorID, d.Day, tz, dh)
				}
			}
			// What else a day says does not depend on ΔH.
			for i := range client {
				client[i].MKT = kept[i].MKT
			}
			assert.Equal(t, kept, client, "in %s under ΔH %g", tz, dh)
		}
	}
}
