// Package export serves readings and daily statistics as CSV, streamed:
// GET /sensors/{id}/export.csv and GET /clients/{id}/export.csv.
// Rows go from PostgreSQL to the caller as they come, through one buffer,
// so memory does not grow with the size of the export.
package export

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// MaxDays caps the from..to span of one export: a leap year of a sensor's
// readings (3.16 M at one every 10 s) fits.
const MaxDays = 366

// MaxReadings caps the readings of one export: about 30 s of streaming at
// the rate docs/benchmarks.md measured on 2 cores, so a slower Lambda still
// ends well within its 300-s timeout. A client's year of many sensors is
// refused up front rather than cut off after minutes of work.
const MaxReadings = 20_000_000

// dailyPage is how many days one statistics query returns.
const dailyPage = 500

// Handler serves the export routes.
type Handler struct {
	store tempwatch.ReadingExport
	log   *slog.Logger
}

// NewHandler returns the export handler over store.
func NewHandler(store tempwatch.ReadingExport, log *slog.Logger) http.Handler {
	h := &Handler{store: store, log: log}
	rt := httpapi.NewRouter(log)
	rt.Handle("GET /sensors/{id}/export.csv", h.handleSensor)
	rt.Handle("GET /clients/{id}/export.csv", h.handleClient)
	return rt
}

// request is a parsed export query.
type request struct {
	daily    bool
	loc      *time.Location
	dh       float64   // the MKT's ΔH in kJ/mol; 0 for the default
	from, to time.Time // [from, to); local midnights for daily
	// fromName and toName are from and to as they go in the file name.
	fromName, toName string
}

func (h *Handler) handleSensor(w http.ResponseWriter, r *http.Request) error {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	sub, err := h.store.SensorSubject(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := tempwatch.Authorize(p, tempwatch.Read, sub.ClientID, "Sensor"); err != nil {
		return err
	}
	return h.serve(w, r, sub, false)
}

func (h *Handler) handleClient(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	if err := tempwatch.Authorize(p, tempwatch.Read, id, "Client"); err != nil {
		return err
	}
	sub, err := h.store.ClientSubject(r.Context(), id)
	if err != nil {
		return err
	}
	return h.serve(w, r, sub, true)
}

// serve parses the query and streams the CSV. An error before the first
// bytes went out is answered as a problem; after, the response is cut off
// (http.ErrAbortHandler), so the caller's download fails instead of ending
// in a file that looks whole.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, sub tempwatch.ExportSubject, perSensor bool) error {
	req, err := parseRequest(r, sub.Timezone)
	if err != nil {
		return err
	}
	kind := ""
	if req.daily {
		kind = "_daily"
		if req.dh != 0 { // the file says which MKT it holds: daily_mkt-dh-60 for 60 kJ/mol
			kind += "_mkt-dh-" + strconv.FormatFloat(req.dh, 'f', -1, 64)
		}
	} else {
		n, err := h.store.CountReadings(r.Context(), sub, req.from, req.to)
		if err != nil {
			return err
		}
		if n > MaxReadings {
			return tempwatch.Invalid("to", fmt.Sprintf(
				"the range holds about %d readings, more than the %d one export streams: export a shorter range, sensor by sensor, or data=daily",
				n, MaxReadings))
		}
	}
	name := safeName(sub.Label) + kind + "_" + req.fromName + "_" + req.toName + ".csv"
	out := &committer{w: w, rc: http.NewResponseController(w), headers: func(hd http.Header) {
		hd.Set("Content-Type", "text/csv; charset=utf-8")
		hd.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	}}
	cw := newCSVWriter(out)
	if req.daily {
		err = h.writeDaily(r.Context(), cw, sub, req, perSensor)
	} else {
		err = h.writeReadings(r.Context(), cw, sub, req, perSensor)
	}
	if err == nil {
		err = cw.flush()
	}
	if err == nil || !out.committed {
		return err
	}
	if r.Context().Err() == nil {
		h.log.ErrorContext(r.Context(), "export cut off", "err", err, "rows", cw.rows)
	}
	panic(http.ErrAbortHandler)
}

// sensorColumns lead each row of a client's export.
var sensorColumns = []string{"sensor_id", "device_id", "sensor_name"}

func (c *csvWriter) sensor(s tempwatch.ExportSensor) {
	c.raw(s.ID)
	c.text(s.DeviceID)
	c.text(s.Name)
}

func (h *Handler) writeReadings(ctx context.Context, cw *csvWriter, sub tempwatch.ExportSubject, req request, perSensor bool) error {
	cols := []string{"measured_at", "value_c"}
	if perSensor {
		cols = append(slices.Clone(sensorColumns), cols...)
	}
	if err := cw.header(cols); err != nil {
		return err
	}
	for _, s := range sub.Sensors {
		err := h.store.EachReading(ctx, s.ID, req.from, req.to, func(at time.Time, v float64) error {
			if perSensor {
				cw.sensor(s)
			}
			cw.time(at, req.loc)
			cw.float(v)
			return cw.end()
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// dailyColumn is one column of the daily statistics export.
type dailyColumn struct {
	name string
	cell func(c *csvWriter, d *tempwatch.DailyAverage, loc *time.Location)
}

// dailyColumns are the daily statistics export's columns: every field of
// tempwatch.DailyAverage that the statistics API returns (a test holds
// them together), values in degrees Celsius named _c.
var dailyColumns = []dailyColumn{
	{"day", func(c *csvWriter, d *tempwatch.DailyAverage, _ *time.Location) { c.raw(d.Day) }},
	{"avg_c", func(c *csvWriter, d *tempwatch.DailyAverage, _ *time.Location) { c.float(d.Avg) }},
	{"min_c", func(c *csvWriter, d *tempwatch.DailyAverage, _ *time.Location) { c.float(d.Min) }},
	{"max_c", func(c *csvWriter, d *tempwatch.DailyAverage, _ *time.Location) { c.float(d.Max) }},
	{"count", func(c *csvWriter, d *tempwatch.DailyAverage, _ *time.Location) { c.int(d.Count) }},
	{"first_measured_at", func(c *csvWriter, d *tempwatch.DailyAverage, loc *time.Location) { c.time(d.FirstAt, loc) }},
	{"last_measured_at", func(c *csvWriter, d *tempwatch.DailyAverage, loc *time.Location) { c.time(d.LastAt, loc) }},
	{"mkt_c", func(c *csvWriter, d *tempwatch.DailyAverage, _ *time.Location) { c.optFloat(d.MKT) }},
	{"minutes_above", func(c *csvWriter, d *tempwatch.DailyAverage, _ *time.Location) { c.optFloat(d.MinutesAbove) }},
	{"minutes_below", func(c *csvWriter, d *tempwatch.DailyAverage, _ *time.Location) { c.optFloat(d.MinutesBelow) }},
}

// writeDaily writes the days oldest first (the statistics query pages
// newest first): a window of days at a time, as many as make about one
// page, sorted by day and sensor before they are written.
func (h *Handler) writeDaily(ctx context.Context, cw *csvWriter, sub tempwatch.ExportSubject, req request, perSensor bool) error {
	var cols []string
	if perSensor {
		cols = slices.Clone(sensorColumns)
	}
	for _, c := range dailyColumns {
		cols = append(cols, c.name)
	}
	if err := cw.header(cols); err != nil {
		return err
	}
	sensors := make(map[string]tempwatch.ExportSensor, len(sub.Sensors))
	for _, s := range sub.Sensors {
		sensors[s.ID] = s
	}
	f := tempwatch.DailyAverageFilter{Timezone: req.loc.String(), ClientTimezone: sub.Timezone, Limit: dailyPage, MKTDeltaH: req.dh}
	if perSensor {
		f.ClientID = sub.ClientID
	} else {
		f.SensorID = sub.Sensors[0].ID
	}
	window := max(1, dailyPage/max(1, len(sub.Sensors)))
	last := req.to.AddDate(0, 0, -1)
	var days []tempwatch.DailyAverage
	for start := req.from; !start.After(last); start = start.AddDate(0, 0, window) {
		f.From, f.To = start, start.AddDate(0, 0, window-1)
		if last.Before(f.To) {
			f.To = last
		}
		f.BeforeDay, f.BeforeSensor = time.Time{}, ""
		days = days[:0]
		for {
			page, err := h.store.DailyAverages(ctx, f)
			if err != nil {
				return err
			}
			more := len(page) > f.Limit
			if more {
				page = page[:f.Limit]
			}
			days = append(days, page...)
			if !more {
				break
			}
			end := page[len(page)-1]
			f.BeforeDay, _ = time.Parse(time.DateOnly, end.Day)
			f.BeforeSensor = end.SensorID
		}
		slices.SortFunc(days, func(a, b tempwatch.DailyAverage) int {
			return cmp.Or(strings.Compare(a.Day, b.Day), strings.Compare(a.SensorID, b.SensorID))
		})
		for i := range days {
			d := &days[i]
			if perSensor {
				s, ok := sensors[d.SensorID]
				if !ok {
					continue // a sensor added since the export began
				}
				cw.sensor(s)
			}
			for _, c := range dailyColumns {
				c.cell(cw, d, req.loc)
			}
			if err := cw.end(); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseRequest reads data, tz, mkt_delta_h, from and to. from and to are
// dates (YYYY-MM-DD, local midnight in tz) or RFC 3339 instants; to is
// exclusive and at most MaxDays after from. Daily statistics take dates
// only, and only they take mkt_delta_h.
func parseRequest(r *http.Request, clientTZ string) (request, error) {
	q := r.URL.Query()
	v := tempwatch.Validation{}
	req := request{loc: time.UTC}
	switch q.Get("data") {
	case "", "readings":
	case "daily":
		req.daily = true
	default:
		v.Add("data", "must be readings or daily")
	}
	tz := clientTZ
	if s := q.Get("tz"); s != "" {
		tz = s
	}
	if loc, err := time.LoadLocation(tz); err == nil && tempwatch.ValidTimezone(tz) {
		req.loc = loc
	} else {
		v.Add("tz", "must be an IANA time zone such as Europe/Berlin or UTC")
	}
	instant := func(name string) (time.Time, string, bool) {
		s := q.Get(name)
		if s == "" {
			v.Add(name, "is required: a date YYYY-MM-DD or an RFC 3339 time")
			return time.Time{}, "", false
		}
		if d, err := time.Parse(time.DateOnly, s); err == nil {
			if !tempwatch.ValidYear(d.Year()) {
				v.Add(name, tempwatch.YearRangeMessage)
				return time.Time{}, "", false
			}
			return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, req.loc), s, true
		}
		if req.daily {
			v.Add(name, "must be a date YYYY-MM-DD")
			return time.Time{}, "", false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			v.Add(name, "must be a date YYYY-MM-DD or an RFC 3339 time such as 2026-01-01T00:00:00Z")
			return time.Time{}, "", false
		}
		// The year in UTC and in the export's zone: either is a date the
		// database stores or compares with.
		if !tempwatch.ValidYear(t.UTC().Year()) || !tempwatch.ValidYear(t.In(req.loc).Year()) {
			v.Add(name, tempwatch.YearRangeMessage)
			return time.Time{}, "", false
		}
		return t, t.In(req.loc).Format("2006-01-02T150405Z0700"), true
	}
	req.dh = tempwatch.ParseMKTDeltaH(q.Get("mkt_delta_h"), v)
	if !req.daily && q.Get("mkt_delta_h") != "" {
		v.Add("mkt_delta_h", "applies to the daily statistics only (data=daily)")
	}
	from, fromName, okFrom := instant("from")
	to, toName, okTo := instant("to")
	if okFrom && okTo {
		switch {
		case !to.After(from):
			v.Add("to", "must be after from")
		case to.After(from.AddDate(0, 0, MaxDays)):
			v.Add("to", fmt.Sprintf("must be at most %d days after from", MaxDays))
		}
	}
	if err := v.Err(); err != nil {
		return request{}, err
	}
	if req.daily {
		// The statistics query takes local dates: zone-free midnights.
		from = time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
		to = time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, time.UTC)
	}
	req.from, req.to, req.fromName, req.toName = from, to, fromName, toName
	return req, nil
}

// safeName keeps a file name to letters, digits and . _ + -, so it needs
// no escaping in Content-Disposition and names no path.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '+' || c == '-') {
			b[i] = '-'
		}
	}
	return strings.TrimLeft(string(b), ".")
}
