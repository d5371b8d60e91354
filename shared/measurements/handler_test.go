package measurements_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/measurements"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func newHandler(t *testing.T) (*apitest.Env, http.Handler) {
	t.Helper()
	env := apitest.MustEnv(t)
	rdb, prefix := redistest.MustClient(t)
	c := redis.NewCache(redis.New(rdb, redis.Options{Prefix: prefix}), redis.CacheOptions{Store: postgres.NewReadingStore(env.DB)})
	return env, measurements.NewHandler(postgres.NewReadingStore(env.DB), postgres.NewSensorStore(env.DB), c, apitest.Discard())
}

type rollup struct {
	Bucket          time.Time
	Count           int64
	Sum, Min, Max   float64
	FirstAt, LastAt time.Time
}

// assertRollupsExact compares the sensor's reading_rollups with a brute-force
// aggregate over its raw readings, bucket by bucket.
func assertRollupsExact(t *testing.T, env *apitest.Env, sensorID string) {
	t.Helper()
	query := func(q string) []rollup {
		rows, err := env.DB.Query(context.Background(), q, sensorID)
		require.NoError(t, err)
		defer rows.Close()
		var out []rollup
		for rows.Next() {
			var r rollup
			require.NoError(t, rows.Scan(&r.Bucket, &r.Count, &r.Sum, &r.Min, &r.Max, &r.FirstAt, &r.LastAt))
			r.Bucket, r.FirstAt, r.LastAt = r.Bucket.UTC(), r.FirstAt.UTC(), r.LastAt.UTC()
			out = append(out, r)
		}
		require.NoError(t, rows.Err())
		return out
	}
	kept := query(`SELECT bucket_start, count, sum, min, max, first_at, last_at
		FROM reading_rollups WHERE sensor_id = $1 ORDER BY bucket_start`)
	brute := query(`SELECT to_timestamp(floor(extract(epoch FROM measured_at) / 900) * 900) AS b,
			count(*), sum(value), min(value), max(value), min(measured_at), max(measured_at)
		FROM readings WHERE sensor_id = $1 GROUP BY b ORDER BY b`)
	require.Equal(t, len(brute), len(kept), "rollup buckets: kept %v, brute force %v", kept, brute)
	for i := range brute {
		assert.Equal(t, brute[i].Bucket, kept[i].Bucket)
		assert.Equal(t, brute[i].Count, kept[i].Count, "count of bucket %s", brute[i].Bucket)
		assert.InDelta(t, brute[i].Sum, kept[i].Sum, 1e-9, "sum of bucket %s", brute[i].Bucket)
		assert.Equal(t, brute[i].Min, kept[i].Min, "min of bucket %s", brute[i].Bucket)
		assert.Equal(t, brute[i].Max, kept[i].Max, "max of bucket %s", brute[i].Bucket)
		assert.Equal(t, brute[i].FirstAt, kept[i].FirstAt)
		assert.Equal(t, brute[i].LastAt, kept[i].LastAt)
	}
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func TestMeasurementLifecycleKeepsRollupsExact(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	sensor := pgtest.MustSensor(t, env.DB, env.ClientA, "probe", "key-1")
	base := time.Now().UTC().Truncate(15 * time.Minute).Add(-2 * time.Hour)

	ids := map[string]string{}
	for _, m := range []struct {
		name   string
		offset time.Duration
		value  float64
	}{
		{"a", 1 * time.Minute, 4.5},
		{"b", 7 * time.Minute, -1.25},
		{"c", 14 * time.Minute, 9},
		{"d", 20 * time.Minute, 3},
	} {
		resp := apitest.Do(t, h, &env.AdminA, "POST", "/measurements",
			fmt.Sprintf(`{"sensor_id":%q,"value":%v,"measured_at":%q}`, sensor, m.value, rfc(base.Add(m.offset))))
		require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
		got := resp.JSON(t)
		id := strconv.FormatInt(int64(got["id"].(float64)), 10)
		assert.Equal(t, "/measurements/"+id, resp.Header.Get("Location"))
		assert.Equal(t, m.value, got["value"])
		ids[m.name] = id
		assertRollupsExact(t, env, sensor)
	}

	resp := apitest.Do(t, h, &env.ViewerA, "GET", "/measurements/"+ids["c"], "")
	require.Equal(t, http.StatusOK, resp.Status)
	assert.Equal(t, 9.0, resp.JSON(t)["value"])
	assert.Equal(t, sensor, resp.JSON(t)["sensor_id"])

	// Correct the bucket's maximum down: min/max cannot be taken back incrementally.
	resp = apitest.Do(t, h, &env.AdminA, "PATCH", "/measurements/"+ids["c"], `{"value":2}`)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	assert.Equal(t, 2.0, resp.JSON(t)["value"])
	assertRollupsExact(t, env, sensor)

	// Move a measurement into the next bucket: both buckets change.
	resp = apitest.Do(t, h, &env.Admin, "PATCH", "/measurements/"+ids["a"], fmt.Sprintf(`{"measured_at":%q}`, rfc(base.Add(25*time.Minute))))
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	assert.Equal(t, 4.5, resp.JSON(t)["value"], "PATCH leaves unset fields alone")
	assertRollupsExact(t, env, sensor)

	// Moving onto another measurement's instant is the natural-key conflict.
	resp = apitest.Do(t, h, &env.AdminA, "PATCH", "/measurements/"+ids["b"], fmt.Sprintf(`{"measured_at":%q}`, rfc(base.Add(20*time.Minute))))
	assert.Equal(t, http.StatusConflict, resp.Status, string(resp.Body))
	assertRollupsExact(t, env, sensor)

	// Empty the first bucket: its rollup row must go.
	for _, name := range []string{"b", "c"} {
		resp = apitest.Do(t, h, &env.AdminA, "DELETE", "/measurements/"+ids[name], "")
		require.Equal(t, http.StatusNoContent, resp.Status, string(resp.Body))
		assertRollupsExact(t, env, sensor)
	}
	var buckets int
	require.NoError(t, env.DB.QueryRow(context.Background(), `SELECT count(*) FROM reading_rollups WHERE sensor_id = $1`, sensor).Scan(&buckets))
	assert.Equal(t, 1, buckets)
	assert.Equal(t, http.StatusNotFound, apitest.Do(t, h, &env.AdminA, "GET", "/measurements/"+ids["b"], "").Status)
	assert.Equal(t, http.StatusNotFound, apitest.Do(t, h, &env.AdminA, "DELETE", "/measurements/"+ids["b"], "").Status)
	assert.Equal(t, http.StatusNotFound, apitest.Do(t, h, &env.AdminA, "PATCH", "/measurements/"+ids["b"], `{"value":1}`).Status)
}

func TestMeasurementValidation(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	sensor := pgtest.MustSensor(t, env.DB, env.ClientA, "probe", "key-1")
	_, err := env.DB.Exec(context.Background(), `UPDATE sensors SET min_value = -40, max_value = 60 WHERE id = $1`, sensor)
	require.NoError(t, err)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	first := apitest.Do(t, h, &env.AdminA, "POST", "/measurements", fmt.Sprintf(`{"sensor_id":%q,"value":20,"measured_at":%q}`, sensor, rfc(at)))
	require.Equal(t, http.StatusCreated, first.Status, string(first.Body))
	id := strconv.FormatInt(int64(first.JSON(t)["id"].(float64)), 10)

	body := func(value string, measuredAt time.Time) string {
		return fmt.Sprintf(`{"sensor_id":%q,"value":%s,"measured_at":%q}`, sensor, value, rfc(measuredAt))
	}
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantFields []string
	}{
		{"missing fields", "POST", "/measurements", `{}`, 400, []string{"sensor_id", "value"}},
		{"above the sensor's range", "POST", "/measurements", body("60.5", at.Add(time.Minute)), 400, []string{"value"}},
		{"below the sensor's range", "POST", "/measurements", body("-41", at.Add(time.Minute)), 400, []string{"value"}},
		{"far in the future", "POST", "/measurements", body("1", time.Now().Add(2*time.Hour)), 400, []string{"measured_at"}},
		{"before 2000", "POST", "/measurements", body("1", time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)), 400, []string{"measured_at"}},
		{"not a number", "POST", "/measurements", fmt.Sprintf(`{"sensor_id":%q,"value":"warm"}`, sensor), 400, []string{"value"}},
		{"overflowing number", "POST", "/measurements", fmt.Sprintf(`{"sensor_id":%q,"value":1e999}`, sensor), 400, []string{"value"}},
		{"bad time", "POST", "/measurements", fmt.Sprintf(`{"sensor_id":%q,"value":1,"measured_at":"yesterday"}`, sensor), 400, nil},
		{"duplicate instant", "POST", "/measurements", body("21", at), 409, []string{"measured_at"}},
		{"unknown sensor", "POST", "/measurements", `{"sensor_id":"00000000-0000-4000-8000-000000000000","value":1}`, 404, nil},
		{"unknown field", "POST", "/measurements", fmt.Sprintf(`{"sensor_id":%q,"value":1,"seq":3}`, sensor), 400, []string{"seq"}},
		{"patch out of range", "PATCH", "/measurements/" + id, `{"value":100}`, 400, []string{"value"}},
		{"patch sensor", "PATCH", "/measurements/" + id, `{"sensor_id":"` + sensor + `"}`, 400, []string{"sensor_id"}},
		{"list without sensor", "GET", "/measurements", ``, 400, []string{"sensor_id"}},
		{"list bad from", "GET", "/measurements?sensor_id=" + sensor + "&from=today", ``, 400, []string{"from"}},
		{"list reversed range", "GET", "/measurements?sensor_id=" + sensor + "&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", ``, 400, []string{"to"}},
		{"list limit 501", "GET", "/measurements?sensor_id=" + sensor + "&limit=501", ``, 400, []string{"limit"}},
		{"list bad cursor", "GET", "/measurements?sensor_id=" + sensor + "&cursor=eyJ0IjoiMjAyNi0wMS0wMVQwMDowMDowMFoiLCJpIjoieCJ9", ``, 400, nil},
		{"malformed id", "GET", "/measurements/abc", ``, 404, nil},
		{"negative id", "GET", "/measurements/-1", ``, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := apitest.Do(t, h, &env.AdminA, tt.method, tt.path, tt.body)
			require.Equal(t, tt.wantStatus, resp.Status, "%s %s = %s", tt.method, tt.path, resp.Body)
			assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			fields, _ := resp.JSON(t)["errors"].(map[string]any)
			for _, f := range tt.wantFields {
				assert.Contains(t, fields, f, "problem must name field %q: %s", f, resp.Body)
			}
		})
	}
	var n int
	require.NoError(t, env.DB.QueryRow(context.Background(), `SELECT count(*) FROM readings WHERE sensor_id = $1`, sensor).Scan(&n))
	assert.Equal(t, 1, n, "refused writes store nothing")
	assertRollupsExact(t, env, sensor)
}

func TestMeasurementRoles(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	sensor := pgtest.MustSensor(t, env.DB, env.ClientA, "probe", "key-1")
	var id int64
	require.NoError(t, env.DB.QueryRow(context.Background(),
		`INSERT INTO readings (sensor_id, value, measured_at) VALUES ($1, 5, now() - interval '1 hour') RETURNING id`, sensor).Scan(&id))
	path := "/measurements/" + strconv.FormatInt(id, 10)
	create := fmt.Sprintf(`{"sensor_id":%q,"value":1}`, sensor)
	tests := []struct {
		name   string
		p      *tempwatch.Principal
		method string
		path   string
		body   string
		want   int
	}{
		{"viewer reads", &env.ViewerA, "GET", path, "", 200},
		{"viewer lists", &env.ViewerA, "GET", "/measurements?sensor_id=" + sensor, "", 200},
		{"viewer cannot create", &env.ViewerA, "POST", "/measurements", create, 403},
		{"viewer cannot correct", &env.ViewerA, "PATCH", path, `{"value":6}`, 403},
		{"viewer cannot delete", &env.ViewerA, "DELETE", path, "", 403},
		{"other tenant cannot read", &env.AdminB, "GET", path, "", 404},
		{"other tenant cannot list", &env.ViewerB, "GET", "/measurements?sensor_id=" + sensor, "", 404},
		{"other tenant cannot create", &env.AdminB, "POST", "/measurements", create, 404},
		{"other tenant cannot correct", &env.AdminB, "PATCH", path, `{"value":6}`, 404},
		{"other tenant cannot delete", &env.AdminB, "DELETE", path, "", 404},
		{"no principal", nil, "GET", path, "", 401},
		{"client admin corrects", &env.AdminA, "PATCH", path, `{"value":6}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := apitest.Do(t, h, tt.p, tt.method, tt.path, tt.body)
			assert.Equal(t, tt.want, resp.Status, string(resp.Body))
		})
	}
	var value float64
	require.NoError(t, env.DB.QueryRow(context.Background(), `SELECT value FROM readings WHERE id = $1`, id).Scan(&value))
	assert.Equal(t, 6.0, value, "only the client admin's correction applied")
}

// TestMeasurementPagingThousand pages through 1,000 measurements, 100 at a
// time, stored in batches that share created_at (as ingest batches do), so
// the id tie-break is what keeps the order total.
func TestMeasurementPagingThousand(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	sensor := pgtest.MustSensor(t, env.DB, env.ClientA, "probe", "key-1")
	other := pgtest.MustSensor(t, env.DB, env.ClientA, "other", "key-2")
	start := time.Now().UTC().Truncate(time.Second).Add(-48 * time.Hour)
	for batch := range 10 {
		_, err := env.DB.Exec(context.Background(), `INSERT INTO readings (sensor_id, value, measured_at, created_at)
			SELECT $1, i % 50, $2::timestamptz + make_interval(secs => i * 10), $3
			FROM generate_series($4::int, $4::int + 99) AS i`,
			sensor, start, start.Add(time.Duration(batch)*time.Minute), batch*100)
		require.NoError(t, err)
	}
	_, err := env.DB.Exec(context.Background(), `INSERT INTO readings (sensor_id, value, measured_at) VALUES ($1, 1, now())`, other)
	require.NoError(t, err)
	var want []int64
	rows, err := env.DB.Query(context.Background(), `SELECT id FROM readings WHERE sensor_id = $1 ORDER BY created_at DESC, id DESC`, sensor)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		want = append(want, id)
	}
	require.NoError(t, rows.Err())
	require.Len(t, want, 1000)

	var got []int64
	cursor, pages := "", 0
	for {
		pages++
		require.LessOrEqual(t, pages, 10, "more pages than 1000/100")
		path := "/measurements?limit=100&sensor_id=" + sensor
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		resp := apitest.Do(t, h, &env.ViewerA, "GET", path, "")
		require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
		var page httpapi.Page[tempwatch.Reading]
		resp.Decode(t, &page)
		require.Len(t, page.Items, 100)
		for _, m := range page.Items {
			got = append(got, m.ID)
		}
		if !page.HasMore {
			assert.Empty(t, page.NextCursor)
			break
		}
		cursor = page.NextCursor
	}
	assert.Equal(t, 10, pages)
	assert.Equal(t, want, got, "each measurement exactly once, newest first by created_at then id")

	// A time range filters on measured_at.
	from, to := start.Add(100*time.Second), start.Add(200*time.Second)
	resp := apitest.Do(t, h, &env.ViewerA, "GET", "/measurements?limit=500&sensor_id="+sensor+"&from="+rfc(from)+"&to="+rfc(to), "")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var page httpapi.Page[tempwatch.Reading]
	resp.Decode(t, &page)
	assert.Len(t, page.Items, 10, "measured_at in [from, to) at one per 10 s")
	for _, m := range page.Items {
		assert.False(t, m.MeasuredAt.Before(from) || !m.MeasuredAt.Before(to), "measured_at %s outside [%s, %s)", m.MeasuredAt, from, to)
	}
}

// TestMeasurementWritesInvalidateTheReadCache reads the latest reading
// through the Redis cache, corrects and deletes through the API, and expects
// the next cached read to show each change.
func TestMeasurementWritesInvalidateTheReadCache(t *testing.T) {
	t.Parallel()
	env := apitest.MustEnv(t)
	rdb, prefix := redistest.MustClient(t)
	c := redis.NewCache(redis.New(rdb, redis.Options{Prefix: prefix}), redis.CacheOptions{Store: postgres.NewReadingStore(env.DB)})
	h := measurements.NewHandler(postgres.NewReadingStore(env.DB), postgres.NewSensorStore(env.DB), c, apitest.Discard())
	sensor := pgtest.MustSensor(t, env.DB, env.ClientA, "probe", "key-1")
	ctx := context.Background()
	at := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)

	// Stored and cached as ingest does it: rows in PostgreSQL, the latest
	// offered to Redis.
	var stored tempwatch.Reading
	_, err := env.DB.Exec(ctx, `INSERT INTO readings (sensor_id, value, measured_at) VALUES ($1, 1, $2)`, sensor, at.Add(-time.Minute))
	require.NoError(t, err)
	require.NoError(t, env.DB.QueryRow(ctx, `INSERT INTO readings (sensor_id, value, measured_at) VALUES ($1, 5, $2)
		RETURNING id, sensor_id, value, measured_at, created_at`, sensor, at).
		Scan(&stored.ID, &stored.SensorID, &stored.Value, &stored.MeasuredAt, &stored.CreatedAt))
	c.OfferLatest(ctx, stored)
	id := strconv.FormatInt(stored.ID, 10)
	// Prove reads are served from Redis by changing the row behind the cache's back.
	_, err = env.DB.Exec(ctx, `UPDATE readings SET value = 99 WHERE id = $1`, stored.ID)
	require.NoError(t, err)
	latest, err := c.Latest(ctx, sensor)
	require.NoError(t, err)
	require.Equal(t, 5.0, latest.Value, "precondition: served from the cache")

	require.Equal(t, http.StatusOK, apitest.Do(t, h, &env.AdminA, "PATCH", "/measurements/"+id, `{"value":7.5}`).Status)
	latest, err = c.Latest(ctx, sensor)
	require.NoError(t, err)
	assert.Equal(t, 7.5, latest.Value, "a correction shows in the next cached read")

	require.Equal(t, http.StatusNoContent, apitest.Do(t, h, &env.AdminA, "DELETE", "/measurements/"+id, "").Status)
	latest, err = c.Latest(ctx, sensor)
	require.NoError(t, err)
	assert.Equal(t, 1.0, latest.Value, "after deleting the latest, the one before is the latest")
}
