// Package measurements serves the /measurements routes: the stored readings
// of a sensor, listed and corrected by people (devices use ingest).
package measurements

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Invalidator drops cached readings and aggregates of sensors (redis.Cache).
// It never fails the write: a failure is reported where it happens, and the
// entries expire.
type Invalidator interface {
	InvalidateSensor(ctx context.Context, sensorIDs ...string)
}

// Handler serves /measurements.
type Handler struct {
	svc     tempwatch.ReadingService
	sensors tempwatch.SensorService
	inv     Invalidator
	log     *slog.Logger
	now     func() time.Time
}

// NewHandler returns the /measurements handler over svc, looking up sensors
// (for tenant checks) in ss and invalidating the sensor's cached readings and
// aggregates through inv after every committed write.
func NewHandler(svc tempwatch.ReadingService, ss tempwatch.SensorService, inv Invalidator, log *slog.Logger) http.Handler {
	h := &Handler{svc: svc, sensors: ss, inv: inv, log: log, now: time.Now}
	rt := httpapi.NewRouter(log)
	rt.Handle("GET /measurements", h.handleList)
	rt.Handle("POST /measurements", h.handleCreate)
	rt.Handle("GET /measurements/{id}", h.handleGet)
	rt.Handle("PATCH /measurements/{id}", h.handleUpdate)
	rt.Handle("DELETE /measurements/{id}", h.handleDelete)
	return rt
}

// invalidate runs after the commit, so a reader that refills the cache sees
// the new rows.
func (h *Handler) invalidate(r *http.Request, sensorID string) {
	h.inv.InvalidateSensor(r.Context(), sensorID)
}

// sensor returns the sensor with id if p may read it (and, for Write, change its data).
func (h *Handler) sensor(r *http.Request, p tempwatch.Principal, id string, a tempwatch.Access) (*tempwatch.Sensor, error) {
	s, err := h.sensors.FindSensorByID(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return s, tempwatch.Authorize(p, a, s.ClientID, "Sensor")
}

type createRequest struct {
	SensorID   string     `json:"sensor_id"`
	Value      *float64   `json:"value"`
	MeasuredAt *time.Time `json:"measured_at"`
}

func (h *Handler) handleCreate(w http.ResponseWriter, r *http.Request) error {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	var req createRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	v := tempwatch.Validation{}
	if req.SensorID == "" {
		v.Add("sensor_id", "is required")
	}
	if req.Value == nil {
		v.Add("value", "is required")
	}
	if err := v.Err(); err != nil {
		return err
	}
	if _, err := h.sensor(r, p, req.SensorID, tempwatch.Write); err != nil {
		return err
	}
	m := &tempwatch.Reading{SensorID: req.SensorID, Value: *req.Value, MeasuredAt: h.now()}
	if req.MeasuredAt != nil {
		m.MeasuredAt = *req.MeasuredAt
	}
	if err := h.svc.CreateReading(r.Context(), m); err != nil {
		return err
	}
	h.invalidate(r, m.SensorID)
	w.Header().Set("Location", "/measurements/"+strconv.FormatInt(m.ID, 10))
	httpapi.JSON(w, http.StatusCreated, m)
	return nil
}

// find returns the measurement of the path's id if p may read it (and, for Write,
// change it).
func (h *Handler) find(r *http.Request, a tempwatch.Access) (*tempwatch.Reading, error) {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return nil, err
	}
	m, err := h.svc.FindReadingByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return m, tempwatch.Authorize(p, a, m.ClientID, "Measurement")
}

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request) error {
	m, err := h.find(r, tempwatch.Read)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, m)
	return nil
}

func (h *Handler) handleList(w http.ResponseWriter, r *http.Request) error {
	p, page, err := httpapi.ListRequest(r)
	if err != nil {
		return err
	}
	f, err := parseFilter(r, page)
	if err != nil {
		return err
	}
	if _, err := h.sensor(r, p, f.SensorID, tempwatch.Read); err != nil {
		return err
	}
	ms, err := h.svc.FindReadings(r.Context(), f)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, httpapi.NewPage(ms, page.Limit, func(m tempwatch.Reading) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: m.CreatedAt, ID: strconv.FormatInt(m.ID, 10)}
	}))
	return nil
}

// parseFilter reads sensor_id (required: a list is always one sensor's, on
// the readings_page index) and the optional RFC 3339 from/to bounds.
func parseFilter(r *http.Request, page tempwatch.PageRequest) (tempwatch.ReadingFilter, error) {
	q := r.URL.Query()
	f := tempwatch.ReadingFilter{SensorID: q.Get("sensor_id"), Page: page}
	v := tempwatch.Validation{}
	if f.SensorID == "" {
		v.Add("sensor_id", "is required: measurements are listed per sensor")
	}
	f.From, f.To = httpapi.ParseTimeRange(q, v)
	return f, v.Err()
}

func (h *Handler) handleUpdate(w http.ResponseWriter, r *http.Request) error {
	var upd tempwatch.ReadingUpdate
	if err := httpapi.DecodeJSON(r, &upd); err != nil {
		return err
	}
	if _, err := h.find(r, tempwatch.Write); err != nil {
		return err
	}
	m, err := h.svc.UpdateReading(r.Context(), r.PathValue("id"), upd)
	if err != nil {
		return err
	}
	h.invalidate(r, m.SensorID)
	httpapi.JSON(w, http.StatusOK, m)
	return nil
}

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.find(r, tempwatch.Write); err != nil {
		return err
	}
	m, err := h.svc.DeleteReading(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	h.invalidate(r, m.SensorID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
