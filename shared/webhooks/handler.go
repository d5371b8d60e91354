// Package webhooks notifies clients of alarm events: the /webhooks routes
// (a client's webhooks, their secrets and their deliveries), the signature
// of every delivery, the SSRF guard on webhook URLs, and the delivery
// worker the notify function runs on a schedule.
//
// Rules: client admins manage their own client's webhooks, admins every
// client's; viewers may not see them (403: the URLs may carry tokens), and
// another client's webhook is 404. The secret is shown only by the answers
// that create or rotate it.
package webhooks

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Handler serves /webhooks.
type Handler struct {
	svc   tempwatch.WebhookService
	guard *Guard
	log   *slog.Logger
}

// NewHandler returns the /webhooks routes over svc, refusing URLs guard
// refuses.
func NewHandler(svc tempwatch.WebhookService, guard *Guard, log *slog.Logger) http.Handler {
	h := &Handler{svc: svc, guard: guard, log: log}
	rt := httpapi.NewRouter(log)
	rt.Handle("GET /webhooks", h.handleList)
	rt.Handle("POST /webhooks", h.handleCreate)
	rt.Handle("GET /webhooks/{id}", h.handleGet)
	rt.Handle("PATCH /webhooks/{id}", h.handleUpdate)
	rt.Handle("DELETE /webhooks/{id}", h.handleDelete)
	rt.Handle("POST /webhooks/{id}/secret", h.handleRotateSecret)
	rt.Handle("GET /webhooks/{id}/deliveries", h.handleDeliveries)
	return rt
}

// WithSecret is a webhook with its secret: the body of the create and
// rotate answers, the only times the secret is shown.
type WithSecret struct {
	*tempwatch.Webhook
	Secret string `json:"secret"`
}

type createRequest struct {
	ClientID string    `json:"client_id"`
	URL      string    `json:"url"`
	Events   *[]string `json:"events"`
	Enabled  *bool     `json:"enabled"`
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
	if req.ClientID == "" && !p.IsAdmin() {
		req.ClientID = p.ClientID // a client admin creates in their own client
	}
	v := tempwatch.Validation{}
	if !tempwatch.IsUUID(req.ClientID) {
		v.Add("client_id", "must be a client's id (UUID)")
	} else if err := tempwatch.Authorize(p, tempwatch.Write, req.ClientID, "Client"); err != nil {
		return err
	}
	hook := &tempwatch.Webhook{ClientID: req.ClientID, URL: req.URL, Events: slices.Clone(tempwatch.AlarmEventTypes),
		Enabled: true, Secret: NewSecret()}
	if req.Events != nil {
		hook.Events = *req.Events
	}
	if req.Enabled != nil {
		hook.Enabled = *req.Enabled
	}
	h.checkURL(v, &req.URL)
	if err := hook.Validate(); err != nil {
		for field, msg := range tempwatch.ErrorFields(err) {
			v.Add(field, msg)
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	if err := h.svc.CreateWebhook(r.Context(), hook); err != nil {
		return err
	}
	w.Header().Set("Location", "/webhooks/"+hook.ID)
	httpapi.JSON(w, http.StatusCreated, WithSecret{Webhook: hook, Secret: hook.Secret})
	return nil
}

// checkURL adds to v what the guard refuses in url (nil: not given).
func (h *Handler) checkURL(v tempwatch.Validation, url *string) {
	if url == nil || *url == "" {
		return // Validate names a missing URL
	}
	for field, msg := range tempwatch.ErrorFields(h.guard.CheckURL(*url)) {
		v.Add(field, msg)
	}
}

// find returns the path's webhook if p may manage it: another client's is
// ENOTFOUND, a viewer's own client's EFORBIDDEN.
func (h *Handler) find(r *http.Request) (*tempwatch.Webhook, error) {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return nil, err
	}
	hook, err := h.svc.FindWebhookByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return hook, tempwatch.Authorize(p, tempwatch.Write, hook.ClientID, "Webhook")
}

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request) error {
	hook, err := h.find(r)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, hook)
	return nil
}

func (h *Handler) handleList(w http.ResponseWriter, r *http.Request) error {
	p, page, err := httpapi.ListRequest(r)
	if err != nil {
		return err
	}
	f := tempwatch.WebhookFilter{ClientID: r.URL.Query().Get("client_id"), Page: page}
	if f.ClientID != "" && !tempwatch.IsUUID(f.ClientID) {
		return tempwatch.Invalid("client_id", "must be a client id (UUID)")
	}
	if !p.IsAdmin() {
		// Viewers may not see their client's webhooks at all.
		if err := tempwatch.Authorize(p, tempwatch.Write, p.ClientID, "Client"); err != nil {
			return err
		}
	}
	var ok bool
	if f.ClientID, ok = tempwatch.ListScope(p, f.ClientID); !ok {
		return tempwatch.NotFound("Client")
	}
	hooks, err := h.svc.FindWebhooks(r.Context(), f)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, httpapi.NewPage(hooks, page.Limit, func(hook *tempwatch.Webhook) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: hook.CreatedAt, ID: hook.ID}
	}))
	return nil
}

func (h *Handler) handleUpdate(w http.ResponseWriter, r *http.Request) error {
	var upd tempwatch.WebhookUpdate
	if err := httpapi.DecodeJSON(r, &upd); err != nil {
		return err
	}
	before, err := h.find(r)
	if err != nil {
		return err
	}
	v := tempwatch.Validation{}
	h.checkURL(v, upd.URL)
	if err := v.Err(); err != nil {
		return err
	}
	hook, err := h.svc.UpdateWebhook(r.Context(), before.ID, upd)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, hook)
	return nil
}

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request) error {
	hook, err := h.find(r)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteWebhook(r.Context(), hook.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) handleRotateSecret(w http.ResponseWriter, r *http.Request) error {
	before, err := h.find(r)
	if err != nil {
		return err
	}
	secret := NewSecret()
	hook, err := h.svc.RotateWebhookSecret(r.Context(), before.ID, secret)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, WithSecret{Webhook: hook, Secret: secret})
	return nil
}

func (h *Handler) handleDeliveries(w http.ResponseWriter, r *http.Request) error {
	_, page, err := httpapi.ListRequest(r)
	if err != nil {
		return err
	}
	f := tempwatch.DeliveryFilter{State: r.URL.Query().Get("state"), Page: page}
	if f.State != "" && !slices.Contains(tempwatch.DeliveryStates, f.State) {
		return tempwatch.Invalid("state", "must be one of "+strings.Join(tempwatch.DeliveryStates, ", "))
	}
	hook, err := h.find(r)
	if err != nil {
		return err
	}
	f.WebhookID = hook.ID
	ds, err := h.svc.FindWebhookDeliveries(r.Context(), f)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, httpapi.NewPage(ds, page.Limit, func(d *tempwatch.WebhookDelivery) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: d.CreatedAt, ID: d.ID}
	}))
	return nil
}
