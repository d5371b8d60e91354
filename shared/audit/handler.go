// Package audit serves the audit trail: GET /audit and GET /audit/{id}.
// There is no route that changes it.
//
// Rules: admins read every event; client admins the events of their own
// client (another client's event is 404, like a missing one); viewers none
// (403).
package audit

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Handler serves /audit.
type Handler struct {
	log tempwatch.AuditLog
}

// NewHandler returns the /audit routes over log.
func NewHandler(log tempwatch.AuditLog, logger *slog.Logger) http.Handler {
	h := &Handler{log: log}
	rt := httpapi.NewRouter(logger)
	rt.Handle("GET /audit", h.handleList)
	rt.Handle("GET /audit/{id}", h.handleGet)
	return rt
}

// maxEntityID bounds entity_id: the longest id of an entity (a uuid, a
// measurement's number) is far shorter.
const maxEntityID = 100

// parseFilter reads the list's filters, naming each bad one.
func parseFilter(r *http.Request) (tempwatch.AuditFilter, error) {
	page, err := httpapi.ParsePage(r)
	if err != nil {
		return tempwatch.AuditFilter{}, err
	}
	q := r.URL.Query()
	f := tempwatch.AuditFilter{ClientID: q.Get("client_id"), ActorID: q.Get("actor_id"),
		Entity: q.Get("entity"), EntityID: q.Get("entity_id"), Action: q.Get("action"), Page: page}
	v := tempwatch.Validation{}
	if f.ClientID != "" && !tempwatch.IsUUID(f.ClientID) {
		v.Add("client_id", "must be a client id")
	}
	if f.ActorID != "" && !tempwatch.IsUUID(f.ActorID) {
		v.Add("actor_id", "must be a user id")
	}
	if f.Entity != "" && !slices.Contains(tempwatch.AuditEntities, f.Entity) {
		v.Add("entity", "must be one of "+strings.Join(tempwatch.AuditEntities, ", "))
	}
	switch {
	case len(f.EntityID) > maxEntityID:
		v.Add("entity_id", "is too long")
	case f.EntityID != "" && f.Entity == "":
		v.Add("entity", "is required with entity_id")
	}
	if f.Action != "" && !slices.Contains(tempwatch.AuditActions, f.Action) {
		v.Add("action", "must be one of "+strings.Join(tempwatch.AuditActions, ", "))
	}
	f.From, f.To = httpapi.ParseTimeRange(q, v)
	return f, v.Err()
}

// reader returns the caller of r if they may read the audit trail.
func reader(r *http.Request) (tempwatch.Principal, error) {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return p, err
	}
	return p, tempwatch.AuthorizeAuditRead(p)
}

func (h *Handler) handleList(w http.ResponseWriter, r *http.Request) error {
	p, err := reader(r)
	if err != nil {
		return err
	}
	f, err := parseFilter(r)
	if err != nil {
		return err
	}
	var events []*tempwatch.AuditEvent
	// A client admin naming another client gets an empty list, as if that
	// client had no events.
	var ok bool
	if f.ClientID, ok = tempwatch.ListScope(p, f.ClientID); ok {
		if events, err = h.log.FindAuditEvents(r.Context(), f); err != nil {
			return err
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.JSON(w, http.StatusOK, httpapi.NewPage(events, f.Page.Limit, func(e *tempwatch.AuditEvent) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: e.At, ID: e.ID}
	}))
	return nil
}

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request) error {
	p, err := reader(r)
	if err != nil {
		return err
	}
	e, err := h.log.FindAuditEventByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := tempwatch.Authorize(p, tempwatch.Read, e.ClientID, "Audit event"); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.JSON(w, http.StatusOK, e)
	return nil
}
