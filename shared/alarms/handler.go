// Package alarms serves the /alarms routes: a client's alarms, newest start
// first, one alarm, and its acknowledgement.
//
// Rules: admins read and acknowledge every client's alarms; client admins
// and viewers their own client's (watching is a viewer's job, so a viewer
// acknowledges though they change nothing else); another client's alarm is
// 404, like a missing one.
package alarms

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Handler serves /alarms.
type Handler struct {
	svc tempwatch.AlarmService
}

// NewHandler returns the /alarms routes over svc.
func NewHandler(svc tempwatch.AlarmService, log *slog.Logger) http.Handler {
	h := &Handler{svc: svc}
	rt := httpapi.NewRouter(log)
	rt.Handle("GET /alarms", h.handleList)
	rt.Handle("GET /alarms/{id}", h.handleGet)
	rt.Handle("POST /alarms/{id}/ack", h.handleAck)
	return rt
}

// parseFilter reads the list's filters, naming each bad one.
func parseFilter(r *http.Request, page tempwatch.PageRequest) (tempwatch.AlarmFilter, error) {
	q := r.URL.Query()
	f := tempwatch.AlarmFilter{ClientID: q.Get("client_id"), SensorID: q.Get("sensor_id"),
		Kind: q.Get("kind"), State: q.Get("state"), Page: page}
	v := tempwatch.Validation{}
	if f.ClientID != "" && !tempwatch.IsUUID(f.ClientID) {
		v.Add("client_id", "must be a client id")
	}
	if f.SensorID != "" && !tempwatch.IsUUID(f.SensorID) {
		v.Add("sensor_id", "must be a sensor id")
	}
	if f.Kind != "" && !slices.Contains(tempwatch.AlarmKinds, f.Kind) {
		v.Add("kind", "must be one of "+strings.Join(tempwatch.AlarmKinds, ", "))
	}
	if f.State != "" && !slices.Contains(tempwatch.AlarmStates, f.State) {
		v.Add("state", "must be one of "+strings.Join(tempwatch.AlarmStates, ", "))
	}
	f.From, f.To = httpapi.ParseTimeRange(q, v)
	return f, v.Err()
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
	items := []*tempwatch.Alarm{}
	// A non-admin naming another client gets an empty list, as if that
	// client had no alarms; a sensor of another client is filtered out by
	// the client scope the same way.
	var ok bool
	if f.ClientID, ok = tempwatch.ListScope(p, f.ClientID); ok {
		if items, err = h.svc.FindAlarms(r.Context(), f); err != nil {
			return err
		}
	}
	httpapi.JSON(w, http.StatusOK, httpapi.NewPage(items, page.Limit, func(a *tempwatch.Alarm) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: a.StartedAt, ID: a.ID}
	}))
	return nil
}

// find returns the caller and the alarm of the path's id, if they may see
// it (and so acknowledge it).
func (h *Handler) find(r *http.Request) (tempwatch.Principal, *tempwatch.Alarm, error) {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return p, nil, err
	}
	a, err := h.svc.FindAlarmByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return p, nil, err
	}
	return p, a, tempwatch.Authorize(p, tempwatch.Read, a.ClientID, "Alarm")
}

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request) error {
	_, a, err := h.find(r)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, a)
	return nil
}

type ackRequest struct {
	Comment string `json:"comment"`
}

func (h *Handler) handleAck(w http.ResponseWriter, r *http.Request) error {
	var req ackRequest
	// The comment is optional, and so is a body that would hold only it.
	if r.ContentLength != 0 {
		if err := httpapi.DecodeJSON(r, &req); err != nil {
			return err
		}
	}
	if err := tempwatch.ValidateAckComment(req.Comment); err != nil {
		return err
	}
	p, a, err := h.find(r)
	if err != nil {
		return err
	}
	acked, err := h.svc.AcknowledgeAlarm(r.Context(), a.ID, p.UserID, req.Comment)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, acked)
	return nil
}
