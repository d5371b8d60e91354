// Package clients serves the /clients routes: CRUD on tenants.
//
// Rules: admins do everything. Client admins and viewers see only their own
// client (another client's id is 404); a client admin may rename their client
// and change its time zone, but not its slug, which devices use in their MQTT
// topics. Creating and deleting clients is for admins only (403).
package clients

import (
	"log/slog"
	"net/http"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Handler serves /clients.
type Handler struct {
	svc tempwatch.ClientService
	log *slog.Logger
	mux *http.ServeMux
}

// NewHandler returns the /clients handler over svc. It expects
// auth.Middleware in front of it (a request without a Principal is 401).
func NewHandler(svc tempwatch.ClientService, log *slog.Logger) http.Handler {
	h := &Handler{svc: svc, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /clients", h.handleList)
	h.mux.HandleFunc("POST /clients", h.handleCreate)
	h.mux.HandleFunc("GET /clients/{id}", h.handleGet)
	h.mux.HandleFunc("PATCH /clients/{id}", h.handleUpdate)
	h.mux.HandleFunc("DELETE /clients/{id}", h.handleDelete)
	h.mux.Handle("/", httpapi.NotFound(log))
	return httpapi.Wrap(log, h.mux)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.Error(w, r, h.log, err)
}

type createRequest struct {
	Name     string `json:"name"`
	Slug     string `json:"slug"`
	Timezone string `json:"timezone"`
}

func (h *Handler) handleCreate(w http.ResponseWriter, r *http.Request) {
	p, err := auth.Require(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !p.IsAdmin() {
		h.fail(w, r, tempwatch.Errorf(tempwatch.EFORBIDDEN, "Only an admin can create clients."))
		return
	}
	var req createRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	c := &tempwatch.Client{Name: req.Name, Slug: req.Slug, Timezone: req.Timezone}
	if err := h.svc.CreateClient(r.Context(), c); err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/clients/"+c.ID)
	httpapi.JSON(w, http.StatusCreated, c)
}

// visible returns the path's client id when p may read it, else ENOTFOUND.
func visible(r *http.Request) (tempwatch.Principal, string, error) {
	p, err := auth.Require(r)
	if err != nil {
		return p, "", err
	}
	id := r.PathValue("id")
	if !p.CanRead(id) {
		return p, "", tempwatch.NotFound("Client")
	}
	return p, id, nil
}

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request) {
	_, id, err := visible(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c, err := h.svc.FindClientByID(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, c)
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
	f := tempwatch.ClientFilter{Name: r.URL.Query().Get("name"), OnlyID: p.ScopeClient(), Page: page}
	cs, err := h.svc.FindClients(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, httpapi.NewPage(cs, page.Limit, func(c *tempwatch.Client) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: c.CreatedAt, ID: c.ID}
	}))
}

func (h *Handler) handleUpdate(w http.ResponseWriter, r *http.Request) {
	p, id, err := visible(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var upd tempwatch.ClientUpdate
	if err := httpapi.DecodeJSON(r, &upd); err != nil {
		h.fail(w, r, err)
		return
	}
	switch {
	case !p.CanWrite(id):
		err = tempwatch.Errorf(tempwatch.EFORBIDDEN, "Your role cannot change this client.")
	case upd.Slug != nil && !p.IsAdmin():
		err = tempwatch.Errorf(tempwatch.EFORBIDDEN, "Only an admin can change a client's slug.")
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c, err := h.svc.UpdateClient(r.Context(), id, upd)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, c)
}

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request) {
	p, id, err := visible(r)
	if err == nil && !p.IsAdmin() {
		err = tempwatch.Errorf(tempwatch.EFORBIDDEN, "Only an admin can delete clients.")
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.svc.DeleteClient(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
