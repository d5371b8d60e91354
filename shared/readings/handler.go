// Package readings serves a sensor's readings: GET /sensors/{id}/readings
// (newest created first, keyset pages, optional from/to on measured_at, or
// only the latest with latest=true) and GET /sensors/{id}/readings/latest.
package readings

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// OwnerTTL is how long a sensor's owner is kept in process memory.
const OwnerTTL = 10 * time.Second

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
	owners *Owners
	log    *slog.Logger
	mux    *http.ServeMux
}

// NewHandler returns the readings handler over q, with latest readings read
// through c.
func NewHandler(q tempwatch.ReadingQuery, c LatestCache, log *slog.Logger) http.Handler {
	h := &Handler{q: q, cache: c, owners: NewOwners(q.FindSensorOwner, OwnerTTL), log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /sensors/{id}/readings", h.handleList)
	h.mux.HandleFunc("GET /sensors/{id}/readings/latest", h.handleLatest)
	h.mux.Handle("/", httpapi.NotFound(log))
	return httpapi.Wrap(log, h.mux)
}

// AuthorizeSensor returns the owner of sensorID when the caller of ctx may
// read it; another client's sensor is ENOTFOUND, like a missing one.
func AuthorizeSensor(ctx context.Context, owners *Owners, sensorID string) (tempwatch.SensorOwner, error) {
	p, ok := tempwatch.PrincipalFrom(ctx)
	if !ok {
		return tempwatch.SensorOwner{}, tempwatch.Errorf(tempwatch.EUNAUTHORIZED, "Authentication is required.")
	}
	o, err := owners.Get(ctx, sensorID)
	if err != nil {
		return o, err
	}
	if !p.CanRead(o.ClientID) {
		return tempwatch.SensorOwner{}, tempwatch.NotFound("Sensor")
	}
	return o, nil
}

func (h *Handler) handleLatest(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := AuthorizeSensor(r.Context(), h.owners, id); err != nil {
		httpapi.Error(w, r, h.log, err)
		return
	}
	rd, err := h.cache.Latest(r.Context(), id)
	if err != nil {
		httpapi.Error(w, r, h.log, err)
		return
	}
	h.serve(w, r, rd)
}

func (h *Handler) handleList(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := AuthorizeSensor(r.Context(), h.owners, id); err != nil {
		httpapi.Error(w, r, h.log, err)
		return
	}
	f, latest, err := parseFilter(r)
	if err != nil {
		httpapi.Error(w, r, h.log, err)
		return
	}
	f.SensorID = id
	var rs []tempwatch.Reading
	if latest {
		m, err := h.cache.LatestReadings(r.Context(), []string{id})
		if err != nil {
			httpapi.Error(w, r, h.log, err)
			return
		}
		if rd, ok := m[id]; ok {
			rs = append(rs, rd)
		}
	} else if rs, err = h.q.FindReadings(r.Context(), f); err != nil {
		httpapi.Error(w, r, h.log, err)
		return
	}
	h.serve(w, r, httpapi.NewPage(rs, f.Page.Limit, func(rd tempwatch.Reading) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: rd.CreatedAt, ID: itoa(rd.ID)}
	}))
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpapi.Error(w, r, h.log, err)
		return
	}
	ServeJSON(w, r, b)
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
	parseTime := func(name string) time.Time {
		s := q.Get(name)
		if s == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			v.Add(name, "must be an RFC 3339 time such as 2026-01-31T23:00:00Z")
		}
		return t
	}
	f.From, f.To = parseTime("from"), parseTime("to")
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		v.Add("to", "must be after from")
	}
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

// ServeJSON writes body as a 200 JSON response with a strong ETag, answering
// 304 when the client's If-None-Match already names it. Responses are
// private (per caller) and revalidated on every use, so a client never shows
// data older than the server's.
func ServeJSON(w http.ResponseWriter, r *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	hdr := w.Header()
	hdr.Set("ETag", etag)
	hdr.Set("Cache-Control", "private, no-cache")
	hdr.Set("Vary", "Authorization")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
