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

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Handler serves /clients.
type Handler struct {
	svc tempwatch.ClientService
	log *slog.Logger
}

// NewHandler returns the /clients routes over svc.
func NewHandler(svc tempwatch.ClientService, log *slog.Logger) http.Handler {
	h := &Handler{svc: svc, log: log}
	rt := httpapi.NewRouter(log)
	rt.Handle("GET /clients", h.handleList)
	rt.Handle("POST /clients", h.handleCreate)
	rt.Handle("GET /clients/{id}", h.handleGet)
	rt.Handle("PATCH /clients/{id}", h.handleUpdate)
	rt.Handle("DELETE /clients/{id}", h.handleDelete)
	return rt
}

type createRequest struct {
	Name     string `json:"name"`
	Slug     string `json:"slug"`
	Timezone string `json:"timezone"`
}

func (h *Handler) handleCreate(w http.ResponseWriter, r *http.Request) error {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	if err := tempwatch.AuthorizeAdmin(p, "create clients"); err != nil {
		return err
	}
	var req createRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	c := &tempwatch.Client{Name: req.Name, Slug: req.Slug, Timezone: req.Timezone}
	if err := h.svc.CreateClient(r.Context(), c); err != nil {
		return err
	}
	w.Header().Set("Location", "/clients/"+c.ID)
	httpapi.JSON(w, http.StatusCreated, c)
	return nil
}

// find returns the caller and the path's client id, refusing what the tenant
// rule refuses for access a.
func find(r *http.Request, a tempwatch.Access) (tempwatch.Principal, string, error) {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return p, "", err
	}
	id := r.PathValue("id")
	return p, id, tempwatch.Authorize(p, a, id, "Client")
}

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request) error {
	_, id, err := find(r, tempwatch.Read)
	if err != nil {
		return err
	}
	c, err := h.svc.FindClientByID(r.Context(), id)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, c)
	return nil
}

func (h *Handler) handleList(w http.ResponseWriter, r *http.Request) error {
	p, page, err := httpapi.ListRequest(r)
	if err != nil {
		return err
	}
	scope, _ := tempwatch.ListScope(p, "")
	f := tempwatch.ClientFilter{Name: r.URL.Query().Get("name"), OnlyID: scope, Page: page}
	cs, err := h.svc.FindClients(r.Context(), f)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, httpapi.NewPage(cs, page.Limit, func(c *tempwatch.Client) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: c.CreatedAt, ID: c.ID}
	}))
	return nil
}

func (h *Handler) handleUpdate(w http.ResponseWriter, r *http.Request) error {
	p, id, err := find(r, tempwatch.Write)
	if err != nil {
		return err
	}
	var upd tempwatch.ClientUpdate
	if err := httpapi.DecodeJSON(r, &upd); err != nil {
		return err
	}
	if upd.Slug != nil {
		if err := tempwatch.AuthorizeAdmin(p, "change a client's slug"); err != nil {
			return err
		}
	}
	c, err := h.svc.UpdateClient(r.Context(), id, upd)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, c)
	return nil
}

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request) error {
	p, id, err := find(r, tempwatch.Read)
	if err != nil {
		return err
	}
	if err := tempwatch.AuthorizeAdmin(p, "delete clients"); err != nil {
		return err
	}
	if _, err := h.svc.DeleteClient(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
