// Package users serves the /users routes with their role and tenant rules.
package users

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Handler serves /users. Rules:
//   - admin: everything, every client.
//   - client_admin: users of their own client only; creates and edits roles up
//     to client_admin, never moves a user to another client.
//   - viewer: reads the users of their own client.
//   - everyone may change their own name and password.
//
// Another client's user is 404 (ids do not leak); a user the caller can see
// but not change is 403.
type Handler struct {
	store tempwatch.UserStore
	log   *slog.Logger
}

// NewHandler returns the /users handler over store. It expects auth.Middleware
// in front of it (a request without a Principal is 401).
func NewHandler(store tempwatch.UserStore, log *slog.Logger) http.Handler {
	h := &Handler{store: store, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", h.handleList)
	mux.HandleFunc("POST /users", h.handleCreate)
	mux.HandleFunc("GET /users/{id}", h.handleGet)
	mux.HandleFunc("PATCH /users/{id}", h.handleUpdate)
	mux.HandleFunc("DELETE /users/{id}", h.handleDelete)
	mux.Handle("/", httpapi.NotFound(log))
	return httpapi.Wrap(log, mux)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.Error(w, r, h.log, err)
}

func errUserNotFound() error   { return tempwatch.NotFound("User") }
func errClientNotFound() error { return tempwatch.NotFound("Client") }

// canSee reports whether p may read u.
func canSee(p tempwatch.Principal, u *tempwatch.User) bool {
	return p.UserID == u.ID || p.CanRead(u.ClientID)
}

// canManage reports whether p may change or delete u.
func canManage(p tempwatch.Principal, u *tempwatch.User) bool {
	return p.CanWrite(u.ClientID) && tempwatch.RoleRank(u.Role) <= tempwatch.RoleRank(p.Role)
}

// checkGrant refuses what p may not put in a user: a role above p's own, or
// (for non-admins) a client other than p's.
func checkGrant(p tempwatch.Principal, role string, clientID *string) error {
	if clientID != nil && !p.IsAdmin() && *clientID != p.ClientID {
		return errClientNotFound()
	}
	if tempwatch.ValidRole(role) && tempwatch.RoleRank(role) > tempwatch.RoleRank(p.Role) {
		return tempwatch.Errorf(tempwatch.EFORBIDDEN, "You cannot grant the role %s.", role)
	}
	return nil
}

// setPassword checks the policy and hashes password into u, as POST
// /auth/password does for a user's own change.
func setPassword(u *tempwatch.User, password string) error {
	hash, err := auth.HashNewPassword("password", password)
	if err != nil {
		return err
	}
	u.PasswordHash = hash
	return nil
}

type createRequest struct {
	Email    string  `json:"email"`
	Name     string  `json:"name"`
	Role     string  `json:"role"`
	ClientID *string `json:"client_id"`
	Password string  `json:"password"`
}

func (h *Handler) handleCreate(w http.ResponseWriter, r *http.Request) {
	p, err := auth.Require(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !p.IsAdmin() && p.Role != tempwatch.RoleClientAdmin {
		h.fail(w, r, tempwatch.Errorf(tempwatch.EFORBIDDEN, "Your role cannot create users."))
		return
	}
	var req createRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Role == "" {
		req.Role = tempwatch.RoleViewer
	}
	if err := checkGrant(p, req.Role, req.ClientID); err != nil {
		h.fail(w, r, err)
		return
	}
	u := &tempwatch.User{Email: strings.TrimSpace(req.Email), Name: req.Name, Role: req.Role, ClientID: p.ClientID}
	if req.ClientID != nil {
		u.ClientID = *req.ClientID
	}
	if err := setPassword(u, req.Password); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.store.CreateUser(r.Context(), u); err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/users/"+u.ID)
	httpapi.JSON(w, http.StatusCreated, u)
}

// find returns the user with id if p may see it, else ENOTFOUND.
func (h *Handler) find(r *http.Request, p tempwatch.Principal) (*tempwatch.User, error) {
	u, err := h.store.FindUserByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if !canSee(p, u) {
		return nil, errUserNotFound()
	}
	return u, nil
}

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request) {
	p, err := auth.Require(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := h.find(r, p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, u)
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
	q := r.URL.Query()
	f := tempwatch.UserFilter{ClientID: q.Get("client_id"), Role: q.Get("role"), Page: page}
	v := tempwatch.Validation{}
	if f.ClientID != "" && !tempwatch.IsUUID(f.ClientID) {
		v.Add("client_id", "must be a client id")
	}
	if f.Role != "" && !tempwatch.ValidRole(f.Role) {
		v.Add("role", "must be one of admin, client_admin, viewer")
	}
	if err := v.Err(); err != nil {
		h.fail(w, r, err)
		return
	}
	var us []*tempwatch.User
	// A non-admin asking for another client's users gets an empty list, as
	// if that client had none.
	if p.IsAdmin() || f.ClientID == "" || f.ClientID == p.ClientID {
		if !p.IsAdmin() {
			f.ClientID = p.ClientID
		}
		if us, err = h.store.FindUsers(r.Context(), f); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	httpapi.JSON(w, http.StatusOK, httpapi.NewPage(us, page.Limit, func(u *tempwatch.User) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: u.CreatedAt, ID: u.ID}
	}))
}

type updateRequest struct {
	Email    *string `json:"email"`
	Name     *string `json:"name"`
	Role     *string `json:"role"`
	ClientID *string `json:"client_id"`
	Password *string `json:"password"`
}

// selfService reports whether upd only touches what a user may change on
// their own account.
func (upd updateRequest) selfService() bool {
	return upd.Email == nil && upd.Role == nil && upd.ClientID == nil
}

func (h *Handler) handleUpdate(w http.ResponseWriter, r *http.Request) {
	p, err := auth.Require(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var upd updateRequest
	if err := httpapi.DecodeJSON(r, &upd); err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := h.find(r, p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !(u.ID == p.UserID && upd.selfService()) && !canManage(p, u) {
		h.fail(w, r, tempwatch.Errorf(tempwatch.EFORBIDDEN, "You cannot change this user."))
		return
	}
	role := u.Role
	if upd.Role != nil {
		role = *upd.Role
	}
	if err := checkGrant(p, role, upd.ClientID); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := apply(u, upd); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.store.UpdateUser(r.Context(), u); err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, u)
}

// apply sets the fields upd names on u. Promoting to admin drops the client
// unless the body names one (which validation then refuses).
func apply(u *tempwatch.User, upd updateRequest) error {
	if upd.Email != nil {
		u.Email = strings.TrimSpace(*upd.Email)
	}
	if upd.Name != nil {
		u.Name = *upd.Name
	}
	if upd.Role != nil {
		u.Role = *upd.Role
		if u.Role == tempwatch.RoleAdmin && upd.ClientID == nil {
			u.ClientID = ""
		}
	}
	if upd.ClientID != nil {
		u.ClientID = *upd.ClientID
	}
	if upd.Password != nil {
		return setPassword(u, *upd.Password)
	}
	return nil
}

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request) {
	p, err := auth.Require(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := h.find(r, p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	switch {
	case u.ID == p.UserID:
		err = tempwatch.Errorf(tempwatch.EFORBIDDEN, "You cannot delete your own account.")
	case !canManage(p, u):
		err = tempwatch.Errorf(tempwatch.EFORBIDDEN, "You cannot delete this user.")
	default:
		err = h.store.DeleteUser(r.Context(), u.ID)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
