// Package clients serves the /clients routes: CRUD on tenants.
package clients

import (
	"log/slog"
	"net/http"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Handler serves /clients.
type Handler struct {
	svc tempwatch.ClientService
	log *slog.Logger
	mux *http.ServeMux
}

// NewHandler returns the /clients handler over svc.
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

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request) {
	c, err := h.svc.FindClientByID(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, c)
}

func (h *Handler) handleList(w http.ResponseWriter, r *http.Request) {
	page, err := httpapi.ParsePage(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f := tempwatch.ClientFilter{Name: r.URL.Query().Get("name"), Page: page}
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
	var upd tempwatch.ClientUpdate
	if err := httpapi.DecodeJSON(r, &upd); err != nil {
		h.fail(w, r, err)
		return
	}
	c, err := h.svc.UpdateClient(r.Context(), r.PathValue("id"), upd)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, c)
}

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.DeleteClient(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
