package export_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/export"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// env is the export handler over a schema of its own, served over real
// HTTP; the caller is named by the X-Test-Caller header (a key of callers).
type env struct {
	db      *pgxpool.Pool
	store   *postgres.ReadingStore
	srv     *httptest.Server
	callers map[string]tempwatch.Principal
}

func newEnv(t testing.TB, wrap func(tempwatch.ReadingExport) tempwatch.ReadingExport) *env {
	t.Helper()
	db := pgtest.MustDB(t)
	e := &env{db: db, store: postgres.NewReadingStore(db), callers: map[string]tempwatch.Principal{}}
	var store tempwatch.ReadingExport = e.store
	if wrap != nil {
		store = wrap(store)
	}
	log := slog.New(slog.DiscardHandler)
	h := httpapi.Wrap(log, export.NewHandler(store, log))
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := e.callers[r.Header.Get("X-Test-Caller")]; ok {
			r = r.WithContext(tempwatch.WithPrincipal(r.Context(), p))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	e.callers["admin"] = tempwatch.Principal{UserID: "u-admin", Role: tempwatch.RoleAdmin}
	return e
}

// client adds a client with a viewer and a client admin named
// slug+"-viewer" and slug+"-cadmin".
func (e *env) client(t testing.TB, slug, tz string) string {
	t.Helper()
	id := pgtest.MustClient(t, e.db, slug, tz)
	e.callers[slug+"-viewer"] = tempwatch.Principal{UserID: "u-" + slug + "-v", ClientID: id, Role: tempwatch.RoleViewer}
	e.callers[slug+"-cadmin"] = tempwatch.Principal{UserID: "u-" + slug + "-c", ClientID: id, Role: tempwatch.RoleClientAdmin}
	return id
}

func (e *env) sensor(t testing.TB, clientID, deviceID, name string) string {
	t.Helper()
	id := pgtest.MustSensor(t, e.db, clientID, deviceID, "key-"+deviceID+"-0123456789abcdef")
	_, err := e.db.Exec(context.Background(), `UPDATE sensors SET name = $2 WHERE id = $1`, id, name)
	require.NoError(t, err)
	return id
}

// readings stores (measured_at, value) pairs through the measurements
// service, which keeps the rollups the daily statistics read.
func (e *env) readings(t testing.TB, sensorID string, rs ...any) {
	t.Helper()
	for i := 0; i < len(rs); i += 2 {
		r := tempwatch.Reading{SensorID: sensorID, MeasuredAt: mustTime(t, rs[i].(string)), Value: rs[i+1].(float64)}
		require.NoError(t, e.store.CreateReading(context.Background(), &r))
	}
}

// bulk inserts n readings of sensorID every 10 s from start, straight into
// readings (no rollups: for the readings export only).
func (e *env) bulk(t testing.TB, sensorID string, start time.Time, n int) {
	t.Helper()
	_, err := e.db.Exec(context.Background(), `INSERT INTO readings (sensor_id, value, measured_at)
		SELECT $1, round((4 + 3 * sin(i / 500.0))::numeric, 2)::float8, $2::timestamptz + i * interval '10 seconds'
		FROM generate_series(0, $3::int - 1) AS i`, sensorID, start, n)
	require.NoError(t, err)
}

func (e *env) get(t testing.TB, caller, path string, q url.Values) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path+"?"+q.Encode(), nil)
	require.NoError(t, err)
	req.Header.Set("X-Test-Caller", caller)
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// getCSV exports and parses the answer back with encoding/csv.
func (e *env) getCSV(t testing.TB, caller, path string, q url.Values) (*http.Response, [][]string) {
	t.Helper()
	resp := e.get(t, caller, path, q)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s?%s: %s", path, q.Encode(), body)
	assert.True(t, strings.HasSuffix(string(body), "\r\n"), "rows end in CRLF")
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	require.NoError(t, err, "%s", body)
	return resp, recs
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return at
}

func query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

// TestSensorReadings: every reading of the range, oldest first, each time
// in the zone asked for with that instant's offset: across Berlin's switch
// to summer time, in Kolkata's half-hour zone, and in UTC.
func TestSensorReadings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.client(t, "acme", "Europe/Berlin")
	s := e.sensor(t, c, "cr-1", "Cold room 1")
	e.readings(t, s,
		"2026-03-28T22:59:59Z", 9.0, // 23:59:59 on the 28th in Berlin: before the range
		"2026-03-28T23:00:00Z", 4.25, // local midnight
		"2026-03-29T00:59:50Z", -18.5,
		"2026-03-29T01:00:00Z", 0.1, // 03:00 CEST: the clocks went forward
		"2026-03-29T21:59:59Z", 1e-7,
		"2026-03-29T22:00:00Z", 5.0, // midnight of the 30th in Berlin: the end, excluded
	)
	other := e.sensor(t, c, "cr-2", "Cold room 2")
	e.readings(t, other, "2026-03-29T12:00:00Z", 7.0)

	resp, recs := e.getCSV(t, "acme-viewer", "/sensors/"+s+"/export.csv", query("from", "2026-03-29", "to", "2026-03-30"))
	assert.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, `attachment; filename="cr-1_2026-03-29_2026-03-30.csv"`, resp.Header.Get("Content-Disposition"))
	assert.Equal(t, [][]string{
		{"measured_at", "value_c"},
		{"2026-03-29T00:00:00+01:00", "4.25"},
		{"2026-03-29T01:59:50+01:00", "-18.5"},
		{"2026-03-29T03:00:00+02:00", "0.1"},
		{"2026-03-29T23:59:59+02:00", "0.0000001"},
	}, recs)

	_, recs = e.getCSV(t, "acme-viewer", "/sensors/"+s+"/export.csv",
		query("from", "2026-03-29T00:59:50Z", "to", "2026-03-29T21:59:59Z", "tz", "Asia/Kolkata"))
	assert.Equal(t, [][]string{
		{"measured_at", "value_c"},
		{"2026-03-29T06:29:50+05:30", "-18.5"},
		{"2026-03-29T06:30:00+05:30", "0.1"},
	}, recs)

	resp, recs = e.getCSV(t, "admin", "/sensors/"+s+"/export.csv",
		query("from", "2026-03-29T00:00:00+01:00", "to", "2026-03-29T03:00:00+02:00", "tz", "UTC"))
	assert.Equal(t, `attachment; filename="cr-1_2026-03-28T230000Z_2026-03-29T010000Z.csv"`, resp.Header.Get("Content-Disposition"))
	assert.Equal(t, [][]string{
		{"measured_at", "value_c"},
		{"2026-03-28T23:00:00Z", "4.25"},
		{"2026-03-29T00:59:50Z", "-18.5"},
	}, recs)

	_, recs = e.getCSV(t, "acme-viewer", "/sensors/"+s+"/export.csv", query("from", "2025-01-01", "to", "2025-02-01"))
	assert.Equal(t, [][]string{{"measured_at", "value_c"}}, recs, "a range without readings is the header alone")
}

// TestClientReadings: every sensor of the client, sensor by sensor in
// device id order, with id, device id and name; names quoted as RFC 4180
// says and guarded against formula injection; another client's sensors
// are not in it.
func TestClientReadings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.client(t, "acme", "Asia/Kathmandu")
	names := map[string]string{
		"a-1": `=HYPERLINK("http://evil.example","x")`,
		"a-2": "Freezer, \"B\"\r\nsecond line",
		"a-3": "-20 room",
		"a-4": "+1",
		"a-5": "@SUM(A1)",
		"a-6": "\tTabbed",
		"a-7": "\rReturn",
		"a-8": "Plain ünïcode",
	}
	want := map[string]string{
		"a-1": `'=HYPERLINK("http://evil.example","x")`,
		"a-2": "Freezer, \"B\"\nsecond line", // encoding/csv reads a quoted CRLF as LF
		"a-3": "'-20 room",
		"a-4": "'+1",
		"a-5": "'@SUM(A1)",
		"a-6": "'\tTabbed",
		"a-7": "'\rReturn", // a lone CR is kept as it is
		"a-8": "Plain ünïcode",
	}
	ids := map[string]string{}
	for _, dev := range []string{"a-8", "a-3", "a-1", "a-5", "a-2", "a-7", "a-4", "a-6"} {
		ids[dev] = e.sensor(t, c, dev, names[dev])
		e.readings(t, ids[dev], "2026-06-01T00:00:00Z", 1.5, "2026-06-01T00:00:10Z", 2.5)
	}
	b := e.client(t, "beta", "UTC")
	e.readings(t, e.sensor(t, b, "b-1", "Other"), "2026-06-01T00:00:05Z", 9.0)

	resp, recs := e.getCSV(t, "acme-cadmin", "/clients/"+c+"/export.csv", query("from", "2026-06-01", "to", "2026-06-02"))
	assert.Equal(t, `attachment; filename="acme_2026-06-01_2026-06-02.csv"`, resp.Header.Get("Content-Disposition"))
	require.Equal(t, []string{"sensor_id", "device_id", "sensor_name", "measured_at", "value_c"}, recs[0])
	var wantRows [][]string
	for _, dev := range []string{"a-1", "a-2", "a-3", "a-4", "a-5", "a-6", "a-7", "a-8"} {
		wantRows = append(wantRows,
			[]string{ids[dev], dev, want[dev], "2026-06-01T05:45:00+05:45", "1.5"},
			[]string{ids[dev], dev, want[dev], "2026-06-01T05:45:10+05:45", "2.5"})
	}
	assert.Equal(t, wantRows, recs[1:])
}

// TestDaily: the daily statistics as the statistics service computes them
// (DailyAverages), oldest day first, with every column it returns.
func TestDaily(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.client(t, "acme", "Europe/Berlin")
	s1 := e.sensor(t, c, "d-1", "One")
	s2 := e.sensor(t, c, "d-2", "=Two")
	e.readings(t, s1, "2026-03-28T23:00:00Z", 2.0, "2026-03-29T21:00:00Z", 4.0, "2026-03-30T10:00:00Z", 6.5)
	e.readings(t, s2, "2026-03-30T10:00:00Z", -1.0)

	_, recs := e.getCSV(t, "acme-viewer", "/sensors/"+s1+"/export.csv", query("data", "daily", "from", "2026-03-29", "to", "2026-03-31"))
	// The limit columns: a day's MKT lies within its range and is exact
	// for one reading; minutes are empty without limits.
	assert.Equal(t, []string{"mkt_c", "minutes_above", "minutes_below"}, recs[0][7:])
	mkt, err := strconv.ParseFloat(recs[1][7], 64)
	require.NoError(t, err)
	assert.True(t, mkt > 3 && mkt < 4, "MKT of 2 and 4 °C: %v", mkt)
	assert.Equal(t, []string{"6.5", "", ""}, recs[2][7:])
	// Under another ΔH, by the definition.
	resp40, other := e.getCSV(t, "acme-viewer", "/sensors/"+s1+"/export.csv",
		query("data", "daily", "from", "2026-03-29", "to", "2026-03-31", "mkt_delta_h", "40"))
	assert.Equal(t, `attachment; filename="d-1_daily_mkt-dh-40_2026-03-29_2026-03-31.csv"`, resp40.Header.Get("Content-Disposition"),
		"the file names the ΔH of its MKT")
	const dHOverR = 40000 / 8.3144598
	wantMKT := dHOverR/-math.Log((math.Exp(-dHOverR/275.15)+math.Exp(-dHOverR/277.15))/2) - 273.15
	mkt40, err := strconv.ParseFloat(other[1][7], 64)
	require.NoError(t, err)
	assert.InDelta(t, wantMKT, mkt40, 1e-9, "MKT of 2 and 4 °C under ΔH 40 kJ/mol")
	assert.Greater(t, mkt-mkt40, 1e-4, "a smaller ΔH weighs the warm reading less")
	recs = dropLimitColumns(recs)
	assert.Equal(t, [][]string{
		{"day", "avg_c", "min_c", "max_c", "count", "first_measured_at", "last_measured_at"},
		{"2026-03-29", "3", "2", "4", "2", "2026-03-29T00:00:00+01:00", "2026-03-29T23:00:00+02:00"},
		{"2026-03-30", "6.5", "6.5", "6.5", "1", "2026-03-30T12:00:00+02:00", "2026-03-30T12:00:00+02:00"},
	}, recs)

	resp, recs := e.getCSV(t, "acme-viewer", "/clients/"+c+"/export.csv", query("data", "daily", "from", "2026-03-29", "to", "2026-03-31", "tz", "UTC"))
	recs = dropLimitColumns(recs)
	assert.Equal(t, `attachment; filename="acme_daily_2026-03-29_2026-03-31.csv"`, resp.Header.Get("Content-Disposition"))
	first, second := s1, s2
	if second < first {
		first, second = second, first
	}
	rows := map[string][]string{
		s1: {s1, "d-1", "One", "2026-03-30", "6.5", "6.5", "6.5", "1", "2026-03-30T10:00:00Z", "2026-03-30T10:00:00Z"},
		s2: {s2, "d-2", "'=Two", "2026-03-30", "-1", "-1", "-1", "1", "2026-03-30T10:00:00Z", "2026-03-30T10:00:00Z"},
	}
	assert.Equal(t, [][]string{
		{"sensor_id", "device_id", "sensor_name", "day", "avg_c", "min_c", "max_c", "count", "first_measured_at", "last_measured_at"},
		// In UTC the 28th's 23:00 reading is not of the 29th.
		{s1, "d-1", "One", "2026-03-29", "4", "4", "4", "1", "2026-03-29T21:00:00Z", "2026-03-29T21:00:00Z"},
		rows[first], rows[second],
	}, recs)
}

// dropLimitColumns drops each record's last three cells (MKT and the
// minutes beyond the limits), checked on their own.
func dropLimitColumns(recs [][]string) [][]string {
	for i, r := range recs {
		recs[i] = r[:len(r)-3]
	}
	return recs
}

// TestDailyColumnsCoverStatistics: every field the statistics API returns
// for a day is a column of the daily export (as name or name_c), so a
// field added to tempwatch.DailyAverage fails here until it is exported.
func TestDailyColumnsCoverStatistics(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, "acme", "UTC")
	_, recs := e.getCSV(t, "admin", "/clients/"+c+"/export.csv", query("data", "daily", "from", "2026-01-01", "to", "2026-01-02"))
	cols := map[string]bool{}
	for _, name := range recs[0] {
		cols[name] = true
	}
	typ := reflect.TypeFor[tempwatch.DailyAverage]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		assert.True(t, cols[name] || cols[name+"_c"], "DailyAverage's %s is not a column of the daily export %v", name, recs[0])
	}
}

// TestBadQueries: each mistake is a 400 naming the parameter.
func TestBadQueries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.client(t, "acme", "UTC")
	s := e.sensor(t, c, "s-1", "One")
	for _, tc := range []struct {
		name  string
		q     url.Values
		field string
	}{
		{"no from", query("to", "2026-01-02"), "from"},
		{"no to", query("from", "2026-01-01"), "to"},
		{"bad date", query("from", "2026-13-01", "to", "2026-01-02"), "from"},
		{"bad time", query("from", "2026-01-01", "to", "2026-01-02T25:00:00Z"), "to"},
		{"to before from", query("from", "2026-01-02", "to", "2026-01-01"), "to"},
		{"to equals from", query("from", "2026-01-01", "to", "2026-01-01"), "to"},
		{"span over the limit", query("from", "2026-01-01", "to", "2027-01-03"), "to"},
		{"bad zone", query("from", "2026-01-01", "to", "2026-01-02", "tz", "Mars/Olympus"), "tz"},
		{"Local is no zone", query("from", "2026-01-01", "to", "2026-01-02", "tz", "Local"), "tz"},
		{"bad data", query("from", "2026-01-01", "to", "2026-01-02", "data", "all"), "data"},
		{"year zero", query("from", "0000-01-01", "to", "0000-01-05", "data", "daily"), "from"},
		{"year zero time", query("from", "0000-12-31T23:00:00Z", "to", "2026-01-02"), "from"},
		{"year zero in the zone", query("from", "0001-01-01T00:30:00+01:00", "to", "0001-01-05", "tz", "Europe/Berlin"), "from"},
		{"daily takes dates", query("from", "2026-01-01T00:00:00Z", "to", "2026-01-02", "data", "daily"), "from"},
		{"bad ΔH", query("from", "2026-01-01", "to", "2026-01-02", "data", "daily", "mkt_delta_h", "301"), "mkt_delta_h"},
		{"ΔH of readings", query("from", "2026-01-01", "to", "2026-01-02", "mkt_delta_h", "60"), "mkt_delta_h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/sensors/" + s + "/export.csv", "/clients/" + c + "/export.csv"} {
				resp := e.get(t, "admin", path, tc.q)
				var p struct {
					Errors map[string]string `json:"errors"`
				}
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
				assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "GET %s?%s", path, tc.q.Encode())
				assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
				assert.Contains(t, p.Errors, tc.field, "GET %s?%s: %v", path, tc.q.Encode(), p.Errors)
			}
		})
	}
	// A leap year's span is allowed: a sensor-year.
	resp := e.get(t, "admin", "/sensors/"+s+"/export.csv", query("from", "2028-01-01", "to", "2029-01-01"))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// countOverride is the real store with CountReadings answering n.
type countOverride struct {
	tempwatch.ReadingExport
	n int64
}

func (c countOverride) CountReadings(context.Context, tempwatch.ExportSubject, time.Time, time.Time) (int64, error) {
	return c.n, nil
}

// TestTooManyReadings: an export of more than MaxReadings readings is a 400
// naming the range before any row is read; MaxReadings itself streams.
func TestTooManyReadings(t *testing.T) {
	t.Parallel()
	over := &countOverride{n: export.MaxReadings + 1}
	e := newEnv(t, func(s tempwatch.ReadingExport) tempwatch.ReadingExport { over.ReadingExport = s; return over })
	c := e.client(t, "acme", "UTC")
	s := e.sensor(t, c, "s-1", "One")
	e.readings(t, s, "2026-06-01T00:00:00Z", 1.5)
	q := query("from", "2026-06-01", "to", "2026-06-02")
	resp := e.get(t, "admin", "/clients/"+c+"/export.csv", q)
	var p struct {
		Errors map[string]string `json:"errors"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, p.Errors["to"], "about 20000001 readings", "%v", p.Errors)

	over.n = export.MaxReadings
	_, recs := e.getCSV(t, "admin", "/sensors/"+s+"/export.csv", q)
	assert.Len(t, recs, 2, "header and the one reading")
	over.n = export.MaxReadings + 1
	_, recs = e.getCSV(t, "admin", "/sensors/"+s+"/export.csv", query("from", "2026-06-01", "to", "2026-06-02", "data", "daily"))
	assert.Len(t, recs, 2, "daily statistics are not counted: header and the day")
}

// TestCountReadings: the store's bound is the readings of the whole local
// days the range touches, in the client's zone, of the subject's sensors.
func TestCountReadings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.client(t, "acme", "Asia/Kolkata")
	a, b := e.sensor(t, c, "a", "A"), e.sensor(t, c, "b", "B")
	// Kolkata days: 06-01 holds 3 of a and 1 of b, 06-02 holds 1 of a.
	e.readings(t, a, "2026-05-31T18:30:00Z", 1.0, "2026-06-01T00:00:00Z", 2.0, "2026-06-01T18:29:59Z", 3.0, "2026-06-01T18:30:00Z", 4.0)
	e.readings(t, b, "2026-06-01T12:00:00Z", 5.0)
	other := e.client(t, "beta", "Asia/Kolkata")
	e.readings(t, e.sensor(t, other, "x", "X"), "2026-06-01T12:00:00Z", 6.0)
	sub, err := e.store.ClientSubject(t.Context(), c)
	require.NoError(t, err)
	for _, tc := range []struct {
		from, to string
		want     int64
	}{
		{"2026-06-01T00:00:00Z", "2026-06-01T01:00:00Z", 4}, // one Kolkata day, whole
		{"2026-05-31T18:30:00Z", "2026-06-01T18:30:00Z", 5}, // to's day counts: an upper bound
		{"2026-06-01T18:30:00Z", "2026-06-03T00:00:00Z", 1}, // 06-02 only
		{"2026-06-03T00:00:00Z", "2026-06-04T00:00:00Z", 0}, // no readings
	} {
		n, err := e.store.CountReadings(t.Context(), sub, mustTime(t, tc.from), mustTime(t, tc.to))
		require.NoError(t, err)
		assert.Equal(t, tc.want, n, "%s..%s", tc.from, tc.to)
	}
}

// TestTenants: viewers and client admins export their own client's data;
// another client's sensor or client is a 404, as a missing one is; no
// caller is a 401.
func TestTenants(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.client(t, "acme", "UTC")
	b := e.client(t, "beta", "UTC")
	sa := e.sensor(t, a, "a-1", "A")
	sb := e.sensor(t, b, "b-1", "B")
	q := query("from", "2026-01-01", "to", "2026-01-02")
	for _, tc := range []struct {
		caller, path string
		status       int
	}{
		{"acme-viewer", "/sensors/" + sa + "/export.csv", 200},
		{"acme-cadmin", "/clients/" + a + "/export.csv", 200},
		{"admin", "/clients/" + b + "/export.csv", 200},
		{"admin", "/sensors/" + sb + "/export.csv", 200},
		{"acme-viewer", "/sensors/" + sb + "/export.csv", 404},
		{"acme-cadmin", "/sensors/" + sb + "/export.csv", 404},
		{"acme-viewer", "/clients/" + b + "/export.csv", 404},
		{"beta-cadmin", "/clients/" + a + "/export.csv", 404},
		{"admin", "/sensors/00000000-0000-0000-0000-000000000000/export.csv", 404},
		{"admin", "/clients/not-a-uuid/export.csv", 404},
		{"nobody", "/sensors/" + sa + "/export.csv", 401},
		{"nobody", "/clients/" + a + "/export.csv", 401},
	} {
		for _, daily := range []string{"readings", "daily"} {
			qq := url.Values{"data": {daily}, "from": q["from"], "to": q["to"]}
			resp := e.get(t, tc.caller, tc.path, qq)
			assert.Equal(t, tc.status, resp.StatusCode, "%s GET %s?%s", tc.caller, tc.path, qq.Encode())
			if tc.status != 200 {
				assert.Empty(t, resp.Header.Get("Content-Disposition"))
			}
		}
	}
}

// gate holds the export after `after` rows until release is closed, and
// reports what EachReading returned on done.
type gate struct {
	tempwatch.ReadingExport
	after   int
	reached chan struct{}
	release chan struct{}
	done    chan error
}

func newGate(after int) *gate {
	return &gate{after: after, reached: make(chan struct{}), release: make(chan struct{}), done: make(chan error, 1)}
}

func (g *gate) EachReading(ctx context.Context, id string, from, to time.Time, fn func(time.Time, float64) error) error {
	n := 0
	err := g.ReadingExport.EachReading(ctx, id, from, to, func(at time.Time, v float64) error {
		if n++; n == g.after {
			close(g.reached)
			select {
			case <-g.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return fn(at, v)
	})
	g.done <- err
	return err
}

// TestStreams: the header and the first rows reach the caller while the
// query is still handing out rows (held at a gate), then the rest follow.
func TestStreams(t *testing.T) {
	t.Parallel()
	g := newGate(1000)
	e := newEnv(t, func(s tempwatch.ReadingExport) tempwatch.ReadingExport { g.ReadingExport = s; return g })
	c := e.client(t, "acme", "UTC")
	s := e.sensor(t, c, "s-1", "One")
	const n = 20_000
	e.bulk(t, s, mustTime(t, "2026-01-01T00:00:00Z"), n)

	resp := e.get(t, "admin", "/sensors/"+s+"/export.csv", query("from", "2026-01-01", "to", "2026-01-04"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "measured_at,value_c\r\n", line)
	line, err = br.ReadString('\n')
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(line, "2026-01-01T00:00:00Z,"), line)
	<-g.reached
	select {
	case err := <-g.done:
		t.Fatalf("the query ended (%v) before the caller read the first rows: the answer was not streamed", err)
	default:
	}
	close(g.release)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Equal(t, n-1, strings.Count(string(rest), "\r\n"))
	require.NoError(t, <-g.done)
}

// TestCancel: a caller that hangs up mid-export stops the query: the
// handler's EachReading returns and PostgreSQL runs it no more.
func TestCancel(t *testing.T) {
	g := newGate(5000)
	e := newEnv(t, func(s tempwatch.ReadingExport) tempwatch.ReadingExport { g.ReadingExport = s; return g })
	c := e.client(t, "acme", "UTC")
	s := e.sensor(t, c, "s-1", "One")
	e.bulk(t, s, mustTime(t, "2026-01-01T00:00:00Z"), 200_000)

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/sensors/"+s+"/export.csv?from=2026-01-01&to=2026-02-01", nil)
	require.NoError(t, err)
	req.Header.Set("X-Test-Caller", "admin")
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	<-g.reached
	cancel()
	close(g.release)
	select {
	case err := <-g.done:
		require.Error(t, err, "the export ran to its end after the caller left")
	case <-time.After(10 * time.Second):
		t.Fatal("the export did not stop within 10 s of the caller leaving")
	}
	assert.Eventually(t, func() bool {
		var active int
		require.NoError(t, e.db.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE state = 'active' AND query LIKE 'SELECT measured_at, value FROM readings%'`).Scan(&active))
		return active == 0
	}, 10*time.Second, 20*time.Millisecond, "the export's query still runs in PostgreSQL")
}

// countingDiscard counts what it is given.
type countingDiscard struct{ n int64 }

func (c *countingDiscard) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
