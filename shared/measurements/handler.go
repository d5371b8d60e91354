// Package measurements serves the /measurements routes: the stored readings
// of a sensor, listed and corrected by people (devices use ingest).
package measurements

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/sensors"
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
	svc     tempwatch.MeasurementService
	sensors tempwatch.SensorService
	inv     Invalidator
	log     *slog.Logger
	mux     *http.ServeMux
	now     func() time.Time
}

// NewHandler returns the /measurements handler over svc, looking up sensors
// (for tenant checks) in ss and invalidating the sensor's cached readings and
// aggregates through inv after every committed write. It expects the caller's
// Principal in the request context (auth.Middleware); without one it answers 401.
func NewHandler(svc tempwatch.MeasurementService, ss tempwatch.SensorService, inv Invalidator, log *slog.Logger) http.Handler {
	h := &Handler{svc: svc, sensors: ss, inv: inv, log: log, mux: http.NewServeMux(), now: time.Now}
	h.mux.HandleFunc("GET /measurements", h.handleList)
	h.mux.HandleFunc("POST /measurements", h.handleCreate)
	h.mux.HandleFunc("GET /measurements/{id}", h.handleGet)
	h.mux.HandleFunc("PATCH /measurements/{id}", h.handleUpdate)
	h.mux.HandleFunc("DELETE /measurements/{id}", h.handleDelete)
	h.mux.Handle("/", httpapi.NotFound(log))
	return httpapi.Wrap(log, h.mux)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.Error(w, r, h.log, err)
}

// invalidate runs after the commit, so a reader that refills the cache sees
// the new rows.
func (h *Handler) invalidate(r *http.Request, sensorID string) {
	h.inv.InvalidateSensor(r.Context(), sensorID)
}

// sensor returns the sensor with id if p may read it (and, with write, change its data).
func (h *Handler) sensor(r *http.Request, p tempwatch.Principal, id string, write bool) (*tempwatch.Sensor, error) {
	s, err := h.sensors.FindSensorByID(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return s, sensors.Authorize(p, s.ClientID, "Sensor", write)
}

type createRequest struct {
	SensorID   string     `json:"sensor_id"`
	Value      *float64   `json:"value"`
	MeasuredAt *time.Time `json:"measured_at"`
}

func (h *Handler) handleCreate(w http.ResponseWriter, r *http.Request) {
	p, err := auth.Require(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var req createRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	v := tempwatch.Validation{}
	if req.SensorID == "" {
		v.Add("sensor_id", "is required")
	}
	if req.Value == nil {
		v.Add("value", "is required")
	}
	if err := v.Err(); err != nil {
		h.fail(w, r, err)
		return
	}
	if _, err := h.sensor(r, p, req.SensorID, true); err != nil {
		h.fail(w, r, err)
		return
	}
	m := &tempwatch.Measurement{SensorID: req.SensorID, Value: *req.Value, MeasuredAt: h.now()}
	if req.MeasuredAt != nil {
		m.MeasuredAt = *req.MeasuredAt
	}
	if err := h.svc.CreateMeasurement(r.Context(), m); err != nil {
		h.fail(w, r, err)
		return
	}
	h.invalidate(r, m.SensorID)
	w.Header().Set("Location", "/measurements/"+strconv.FormatInt(m.ID, 10))
	httpapi.JSON(w, http.StatusCreated, m)
}

// find returns the measurement of the path's id if p may read it (and, with
// write, change it).
func (h *Handler) find(r *http.Request, write bool) (*tempwatch.Measurement, error) {
	p, err := auth.Require(r)
	if err != nil {
		return nil, err
	}
	m, err := h.svc.FindMeasurementByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return m, sensors.Authorize(p, m.ClientID, "Measurement", write)
}

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request) {
	m, err := h.find(r, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, m)
}

func (h *Handler) handleList(w http.ResponseWriter, r *http.Request) {
	p, err := auth.Require(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := httpapi.ParsePage(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := parseFilter(r, page)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if _, err := h.sensor(r, p, f.SensorID, false); err != nil {
		h.fail(w, r, err)
		return
	}
	ms, err := h.svc.FindMeasurements(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, httpapi.NewPage(ms, page.Limit, func(m *tempwatch.Measurement) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: m.CreatedAt, ID: strconv.FormatInt(m.ID, 10)}
	}))
}

// parseFilter reads sensor_id (required: a list is always one sensor's, on
// the readings_page index) and the optional RFC 3339 from/to bounds.
func parseFilter(r *http.Request, page tempwatch.PageRequest) (tempwatch.MeasurementFilter, error) {
	q := r.URL.Query()
	f := tempwatch.MeasurementFilter{SensorID: q.Get("sensor_id"), Page: page}
	v := tempwatch.Validation{}
	if f.SensorID == "" {
		v.Add("sensor_id", "is required: measurements are listed per sensor")
	}
	f.From, f.To = httpapi.ParseTimeRange(q, v)
	return f, v.Err()
}

func (h *Handler) handleUpdate(w http.ResponseWriter, r *http.Request) {
	var upd tempwatch.MeasurementUpdate
	if err := httpapi.DecodeJSON(r, &upd); err != nil {
		h.fail(w, r, err)
		return
	}
	if _, err := h.find(r, true); err != nil {
		h.fail(w, r, err)
		return
	}
	m, err := h.svc.UpdateMeasurement(r.Context(), r.PathValue("id"), upd)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.invalidate(r, m.SensorID)
	httpapi.JSON(w, http.StatusOK, m)
}

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request) {
	if _, err := h.find(r, true); err != nil {
		h.fail(w, r, err)
		return
	}
	m, err := h.svc.DeleteMeasurement(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.invalidate(r, m.SensorID)
	w.WriteHeader(http.StatusNoContent)
}
