// Package readings serves a sensor's readings: GET /sensors/{id}/readings
// (newest created first, keyset pages, optional from/to on measured_at, or
// only the latest with latest=true) and GET /sensors/{id}/readings/latest.
package readings

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// LatestCache is where the handler reads latest readings (redis.Cache:
// Redis, else PostgreSQL).
type LatestCache interface {
	// Latest returns the latest reading of the sensor, or ENOTFOUND.
	Latest(ctx context.Context, sensorID string) (tempwatch.Reading, error)
	// LatestReadings returns the latest reading of each of sensorIDs that has one.
	LatestReadings(ctx context.Context, sensorIDs []string) (map[string]tempwatch.Reading, error)
}

// Handler serves the readings routes.
type Handler struct {
	q      tempwatch.ReadingQuery
	cache  LatestCache
	owners *tempwatch.Owners
	log    *slog.Logger
}

// NewHandler returns the readings handler over q, with latest readings read
// through c.
func NewHandler(q tempwatch.ReadingQuery, c LatestCache, log *slog.Logger) http.Handler {
	h := &Handler{q: q, cache: c, owners: tempwatch.NewOwners(q.FindSensorOwner, tempwatch.OwnerTTL), log: log}
	rt := httpapi.NewRouter(log)
	rt.Handle("GET /sensors/{id}/readings", h.handleList)
	rt.Handle("GET /sensors/{id}/readings/latest", h.handleLatest)
	return rt
}

func (h *Handler) handleLatest(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := tempwatch.AuthorizeSensorRead(r.Context(), h.owners.Get, id); err != nil {
		return err
	}
	rd, err := h.cache.Latest(r.Context(), id)
	if err != nil {
		return err
	}
	h.serve(w, r, rd)
	return nil
}

func (h *Handler) handleList(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := tempwatch.AuthorizeSensorRead(r.Context(), h.owners.Get, id); err != nil {
		return err
	}
	f, latest, err := parseFilter(r)
	if err != nil {
		return err
	}
	f.SensorID = id
	var rs []tempwatch.Reading
	if latest {
		m, err := h.cache.LatestReadings(r.Context(), []string{id})
		if err != nil {
			return err
		}
		if rd, ok := m[id]; ok {
			rs = append(rs, rd)
		}
	} else if rs, err = h.q.FindReadings(r.Context(), f); err != nil {
		return err
	}
	h.serve(w, r, httpapi.NewPage(rs, f.Page.Limit, func(rd tempwatch.Reading) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: rd.CreatedAt, ID: itoa(rd.ID)}
	}))
	return nil
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpapi.Error(w, r, h.log, err)
		return
	}
	httpapi.ServeJSON(w, r, b)
}

// parseFilter reads limit, cursor, from, to (RFC 3339) and latest.
func parseFilter(r *http.Request) (tempwatch.ReadingFilter, bool, error) {
	v := tempwatch.Validation{}
	page, err := httpapi.ParsePage(r)
	for field, msg := range tempwatch.ErrorFields(err) {
		v.Add(field, msg)
	}
	q := r.URL.Query()
	f := tempwatch.ReadingFilter{Page: page}
	f.From, f.To = httpapi.ParseTimeRange(q, v)
	var latest bool
	switch strings.ToLower(q.Get("latest")) {
	case "", "false", "0":
	case "true", "1":
		latest = true
	default:
		v.Add("latest", "must be true or false")
	}
	return f, latest, v.Err()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
