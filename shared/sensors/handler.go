// Package sensors serves the /sensors routes: CRUD on a client's sensors and
// the rotation of their device keys, under the tenant rules of auth.
package sensors

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Handler serves /sensors.
type Handler struct {
	svc    tempwatch.SensorService
	caches Caches
	log    *slog.Logger
}

// Caches are what the handler reads through and drops after each committed
// change (redis.SensorCaches). They never fail a request: a failure is
// reported where it happens, and every entry expires.
type Caches interface {
	// LatestReadings returns the latest reading of each of sensorIDs that has one.
	LatestReadings(ctx context.Context, sensorIDs []string) (map[string]tempwatch.Reading, error)
	// ForgetDevices drops the device lookups of the sensors (by topic and by
	// key), so a rotated key stops authenticating at once in Redis (and
	// within the in-process lifetime of running device checks).
	ForgetDevices(ctx context.Context, sensorIDs ...string)
	// InvalidateSensor drops cached readings and aggregates of the sensors.
	InvalidateSensor(ctx context.Context, sensorIDs ...string)
}

// NewHandler returns the /sensors handler over svc, showing each sensor's
// latest reading from caches and invalidating them after every committed
// change.
func NewHandler(svc tempwatch.SensorService, caches Caches, log *slog.Logger) http.Handler {
	h := &Handler{svc: svc, caches: caches, log: log}
	rt := httpapi.NewRouter(log)
	rt.Handle("GET /sensors", h.handleList)
	rt.Handle("POST /sensors", h.handleCreate)
	rt.Handle("GET /sensors/{id}", h.handleGet)
	rt.Handle("PATCH /sensors/{id}", h.handleUpdate)
	rt.Handle("DELETE /sensors/{id}", h.handleDelete)
	rt.Handle("POST /sensors/{id}/rotate-key", h.handleRotateKey)
	return rt
}

// WithLatest is a sensor as GET shows it: with its latest reading (the one
// with the newest measured_at), or null before its first.
type WithLatest struct {
	*tempwatch.Sensor
	LatestReading *tempwatch.Reading `json:"latest_reading"`
}

// withLatest pairs each sensor with its latest reading.
func (h *Handler) withLatest(r *http.Request, ss []*tempwatch.Sensor) ([]WithLatest, error) {
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.ID
	}
	latest, err := h.caches.LatestReadings(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	out := make([]WithLatest, len(ss))
	for i, s := range ss {
		out[i] = WithLatest{Sensor: s}
		if rd, ok := latest[s.ID]; ok {
			out[i].LatestReading = &rd
		}
	}
	return out, nil
}

// WithKey is a sensor with its device key in plain text: the body of the
// create and rotate-key responses, the only times the key is ever shown.
type WithKey struct {
	*tempwatch.Sensor
	DeviceKey string          `json:"device_key"`
	MQTT      MQTTCredentials `json:"mqtt"`
}

// MQTTCredentials are what a device logs in to the broker with (see
// shared/deviceauth): the key is the password.
type MQTTCredentials struct {
	Username string `json:"username"`
	ClientID string `json:"client_id"`
	Password string `json:"password"`
	Topic    string `json:"topic"`
}

func withKey(s *tempwatch.Sensor, ref tempwatch.DeviceRef, key string) WithKey {
	user := deviceauth.Username(ref)
	return WithKey{Sensor: s, DeviceKey: key,
		MQTT: MQTTCredentials{Username: user, ClientID: user, Password: key, Topic: ref.Topic()}}
}

// invalidate drops the cached device lookups of a sensor after a committed
// change (and, when deleted or its limits changed, its cached readings and
// aggregates).
func (h *Handler) invalidate(r *http.Request, sensorID string, deleted bool) {
	h.caches.ForgetDevices(r.Context(), sensorID)
	if deleted {
		h.caches.InvalidateSensor(r.Context(), sensorID)
	}
}

type createRequest struct {
	ClientID  string   `json:"client_id"`
	DeviceID  string   `json:"device_id"`
	Name      string   `json:"name"`
	Location  string   `json:"location"`
	Unit      string   `json:"unit"`
	MinValue  *float64 `json:"min_value"`
	MaxValue  *float64 `json:"max_value"`
	AlertLow  *float64 `json:"alert_low"`
	AlertHigh *float64 `json:"alert_high"`

	AlarmDelaySeconds   int64   `json:"alarm_delay_seconds"`
	AlarmHysteresis     float64 `json:"alarm_hysteresis"`
	SilenceAfterSeconds *int64  `json:"silence_after_seconds"`
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
	if !p.IsAdmin() {
		if req.ClientID == "" {
			req.ClientID = p.ClientID // a client's users create in their own client
		}
		if err := tempwatch.Authorize(p, tempwatch.Write, req.ClientID, "Client"); err != nil {
			return err
		}
	}
	s := &tempwatch.Sensor{ClientID: req.ClientID, DeviceID: req.DeviceID, Name: req.Name, Location: req.Location,
		Unit: req.Unit, MinValue: tempwatch.DefaultSensorMin, MaxValue: tempwatch.DefaultSensorMax,
		AlertLow: req.AlertLow, AlertHigh: req.AlertHigh, AlarmDelaySeconds: req.AlarmDelaySeconds,
		AlarmHysteresis: req.AlarmHysteresis, SilenceAfterSeconds: tempwatch.DefaultSilenceAfterSeconds}
	if req.SilenceAfterSeconds != nil {
		s.SilenceAfterSeconds = *req.SilenceAfterSeconds
	}
	if s.Unit == "" {
		s.Unit = tempwatch.DefaultSensorUnit
	}
	if req.MinValue != nil {
		s.MinValue = *req.MinValue
	}
	if req.MaxValue != nil {
		s.MaxValue = *req.MaxValue
	}
	key, err := tempwatch.NewDeviceKey()
	if err != nil {
		return err
	}
	ref, err := h.svc.CreateSensor(r.Context(), s, tempwatch.HashDeviceKey(key))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/sensors/"+s.ID)
	w.Header().Set("Cache-Control", "no-store")
	httpapi.JSON(w, http.StatusCreated, withKey(s, ref, key))
	return nil
}

// find returns the sensor of the path's id if p may read it (and, for Write,
// change it).
func (h *Handler) find(r *http.Request, a tempwatch.Access) (tempwatch.Principal, *tempwatch.Sensor, error) {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return p, nil, err
	}
	s, err := h.svc.FindSensorByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return p, nil, err
	}
	return p, s, tempwatch.Authorize(p, a, s.ClientID, "Sensor")
}

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request) error {
	_, s, err := h.find(r, tempwatch.Read)
	if err != nil {
		return err
	}
	v, err := h.withLatest(r, []*tempwatch.Sensor{s})
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, v[0])
	return nil
}

func (h *Handler) handleList(w http.ResponseWriter, r *http.Request) error {
	p, page, err := httpapi.ListRequest(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := tempwatch.SensorFilter{ClientID: q.Get("client_id"), Name: q.Get("name"), Status: q.Get("status"), Page: page}
	if f.ClientID != "" && !tempwatch.IsUUID(f.ClientID) {
		return tempwatch.Invalid("client_id", "must be a client id (UUID)")
	}
	if f.Status != "" && !slices.Contains(tempwatch.SensorStatuses, f.Status) {
		return tempwatch.Invalid("status", "must be one of "+strings.Join(tempwatch.SensorStatuses, ", "))
	}
	var ok bool
	if f.ClientID, ok = tempwatch.ListScope(p, f.ClientID); !ok {
		return tempwatch.NotFound("Client")
	}
	ss, err := h.svc.FindSensors(r.Context(), f)
	if err != nil {
		return err
	}
	pg := httpapi.NewPage(ss, page.Limit, func(s *tempwatch.Sensor) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: s.CreatedAt, ID: s.ID}
	})
	items, err := h.withLatest(r, pg.Items)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, httpapi.Page[WithLatest]{Items: items, NextCursor: pg.NextCursor, HasMore: pg.HasMore})
	return nil
}

func (h *Handler) handleUpdate(w http.ResponseWriter, r *http.Request) error {
	var upd tempwatch.SensorUpdate
	if err := httpapi.DecodeJSON(r, &upd); err != nil {
		return err
	}
	_, before, err := h.find(r, tempwatch.Write)
	if err != nil {
		return err
	}
	s, err := h.svc.UpdateSensor(r.Context(), before.ID, upd)
	if err != nil {
		return err
	}
	// Limits and the silence threshold decide the daily statistics' time
	// beyond the limits, which the database has just recomputed.
	limitsChanged := !sameFloat(before.AlertLow, s.AlertLow) || !sameFloat(before.AlertHigh, s.AlertHigh) ||
		before.SilenceAfterSeconds != s.SilenceAfterSeconds
	h.invalidate(r, before.ID, limitsChanged)
	httpapi.JSON(w, http.StatusOK, s)
	return nil
}

func sameFloat(a, b *float64) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request) error {
	_, s, err := h.find(r, tempwatch.Write)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteSensor(r.Context(), s.ID); err != nil {
		return err
	}
	h.invalidate(r, s.ID, true)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) handleRotateKey(w http.ResponseWriter, r *http.Request) error {
	_, before, err := h.find(r, tempwatch.Write)
	if err != nil {
		return err
	}
	key, err := tempwatch.NewDeviceKey()
	if err != nil {
		return err
	}
	s, ref, err := h.svc.SetDeviceKeyHash(r.Context(), before.ID, tempwatch.HashDeviceKey(key))
	if err != nil {
		return err
	}
	h.invalidate(r, s.ID, false)
	w.Header().Set("Cache-Control", "no-store")
	httpapi.JSON(w, http.StatusOK, withKey(s, ref, key))
	return nil
}
