// Package statistics serves daily temperature averages:
// GET /sensors/{id}/daily-averages and GET /clients/{id}/daily-averages.
package statistics

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// MaxDays caps the from..to range of one request.
const MaxDays = 366

// AggregateCache keeps query results (redis.Cache): Aggregate returns the
// cached result of the query named by kind and params over sensorIDs, or
// runs load and keeps its result until a write to one of the sensors.
type AggregateCache interface {
	Aggregate(ctx context.Context, kind, params string, sensorIDs []string, load func(context.Context) ([]byte, error)) ([]byte, error)
}

// Handler serves the daily-averages routes.
type Handler struct {
	q      tempwatch.ReadingQuery
	cache  AggregateCache
	owners *tempwatch.Owners
	log    *slog.Logger
	now    func() time.Time
}

// NewHandler returns the statistics handler over q, with results cached in c.
func NewHandler(q tempwatch.ReadingQuery, c AggregateCache, log *slog.Logger) http.Handler {
	h := &Handler{q: q, cache: c, owners: tempwatch.NewOwners(q.FindSensorOwner, tempwatch.OwnerTTL),
		log: log, now: time.Now}
	rt := httpapi.NewRouter(log)
	rt.Handle("GET /sensors/{id}/daily-averages", h.handleSensor)
	rt.Handle("GET /clients/{id}/daily-averages", h.handleClient)
	return rt
}

// response is a page of days with the zone they were cut in and the ΔH
// of their MKT.
type response struct {
	Timezone  string  `json:"timezone"`
	From      string  `json:"from"`
	To        string  `json:"to"`
	MKTDeltaH float64 `json:"mkt_delta_h"`
	httpapi.Page[tempwatch.DailyAverage]
}

func (h *Handler) handleSensor(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	o, err := tempwatch.AuthorizeSensorRead(r.Context(), h.owners.Get, id)
	if err != nil {
		return err
	}
	// The zone from PostgreSQL, not the owner cache's: for its seconds
	// after a zone change the cached one is a zone whose days are gone.
	tz, err := h.q.FindClientTimezone(r.Context(), o.ClientID)
	if err != nil {
		return err
	}
	f, err := h.parseFilter(r, tz)
	if err != nil {
		return err
	}
	f.SensorID = id
	h.serve(w, r, "sensor-daily", f, []string{id})
	return nil
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
	tz, err := h.q.FindClientTimezone(r.Context(), id)
	if err != nil {
		return err
	}
	f, err := h.parseFilter(r, tz)
	if err != nil {
		return err
	}
	f.ClientID = id
	ids, err := h.q.SensorIDsOfClient(r.Context(), id)
	if err != nil {
		return err
	}
	h.serve(w, r, "client-daily", f, ids)
	return nil
}

// serve answers from the cache, keyed by the filter and the versions of
// sensorIDs, or from PostgreSQL.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, kind string, f tempwatch.DailyAverageFilter, sensorIDs []string) {
	params := fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s|%s|%d|%g", f.SensorID, f.ClientID, f.Timezone, f.ClientTimezone,
		f.From.Format(time.DateOnly), f.To.Format(time.DateOnly), f.BeforeDay.Format(time.DateOnly), f.BeforeSensor, f.Limit, f.MKTDeltaH)
	body, err := h.cache.Aggregate(r.Context(), kind, params, sensorIDs, func(ctx context.Context) ([]byte, error) {
		days, err := h.q.DailyAverages(ctx, f)
		if err != nil {
			return nil, err
		}
		return json.Marshal(response{
			Timezone: f.Timezone, From: f.From.Format(time.DateOnly), To: f.To.Format(time.DateOnly),
			MKTDeltaH: cmp.Or(f.MKTDeltaH, tempwatch.DefaultMKTDeltaH),
			Page: httpapi.NewPage(days, f.Limit, func(d tempwatch.DailyAverage) tempwatch.Cursor {
				day, _ := time.Parse(time.DateOnly, d.Day)
				return tempwatch.Cursor{CreatedAt: day, ID: d.SensorID}
			}),
		})
	})
	if err != nil {
		httpapi.Error(w, r, h.log, err)
		return
	}
	httpapi.ServeJSON(w, r, body)
}

// parseFilter reads from, to, tz, mkt_delta_h, limit and cursor. tz
// defaults to the client's zone; to to today there, from to MaxDays-1 days
// before to.
func (h *Handler) parseFilter(r *http.Request, clientTZ string) (tempwatch.DailyAverageFilter, error) {
	v := tempwatch.Validation{}
	page, err := httpapi.ParsePage(r)
	for field, msg := range tempwatch.ErrorFields(err) {
		v.Add(field, msg)
	}
	q := r.URL.Query()
	f := tempwatch.DailyAverageFilter{Timezone: clientTZ, ClientTimezone: clientTZ, Limit: page.Limit}
	if tz := q.Get("tz"); tz != "" {
		if !tempwatch.ValidTimezone(tz) {
			v.Add("tz", "must be an IANA time zone such as Europe/Berlin or UTC")
		}
		f.Timezone = tz
	}
	date := func(name string) (time.Time, bool) {
		s := q.Get(name)
		if s == "" {
			return time.Time{}, false
		}
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			v.Add(name, "must be a date YYYY-MM-DD")
			return time.Time{}, false
		}
		if !tempwatch.ValidYear(d.Year()) {
			v.Add(name, tempwatch.YearRangeMessage)
			return time.Time{}, false
		}
		return d, true
	}
	from, hasFrom := date("from")
	to, hasTo := date("to")
	if loc, err := time.LoadLocation(f.Timezone); err == nil && !hasTo {
		y, m, d := h.now().In(loc).Date()
		to = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		if hasFrom && from.AddDate(0, 0, MaxDays-1).Before(to) {
			to = from.AddDate(0, 0, MaxDays-1)
		}
	}
	if !hasFrom {
		from = to.AddDate(0, 0, -(MaxDays - 1))
		if !tempwatch.ValidYear(from.Year()) { // to early in year 1
			from = time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC)
		}
	}
	switch {
	case to.Before(from):
		v.Add("to", "must not be before from")
	case from.AddDate(0, 0, MaxDays-1).Before(to):
		v.Add("from", fmt.Sprintf("range must span at most %d days", MaxDays))
	}
	f.From, f.To = from, to
	f.MKTDeltaH = tempwatch.ParseMKTDeltaH(q.Get("mkt_delta_h"), v)
	if c := page.Cursor; c != nil {
		f.BeforeDay = c.CreatedAt.UTC()
		f.BeforeSensor = c.ID
		if !tempwatch.IsUUID(c.ID) {
			v.Add("cursor", "is not a cursor returned by this API")
		}
	}
	return f, v.Err()
}
