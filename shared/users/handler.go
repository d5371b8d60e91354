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
//   - everyone may change their own name; their own password only through
//     POST /auth/password, which asks for the current one (a 400 here).
//
// Another client's user is 404 (ids do not leak); a user the caller can see
// but not change is 403. A change of a user's role, client or password (an
// admin's reset) ends every session the user had (tempwatch.UserStore).
type Handler struct {
	store tempwatch.UserStore
}

// NewHandler returns the /users routes over store.
func NewHandler(store tempwatch.UserStore, log *slog.Logger) http.Handler {
	h := &Handler{store: store}
	rt := httpapi.NewRouter(log)
	rt.Handle("GET /users", h.handleList)
	rt.Handle("POST /users", h.handleCreate)
	rt.Handle("GET /users/{id}", h.handleGet)
	rt.Handle("PATCH /users/{id}", h.handleUpdate)
	rt.Handle("DELETE /users/{id}", h.handleDelete)
	return rt
}

// setPassword checks the policy and hashes password into u, as POST
// /auth/password does for a user's own change.
func setPassword(u *tempwatch.User, password string) error {
	hash, err := auth.HashNewPassword("password", password, u.Email)
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

func (h *Handler) handleCreate(w http.ResponseWriter, r *http.Request) error {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	if !p.IsAdmin() && p.Role != tempwatch.RoleClientAdmin {
		return tempwatch.Errorf(tempwatch.EFORBIDDEN, "Your role cannot create users.")
	}
	var req createRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Role == "" {
		req.Role = tempwatch.RoleViewer
	}
	if err := tempwatch.AuthorizeGrant(p, req.Role, req.ClientID); err != nil {
		return err
	}
	u := &tempwatch.User{Email: strings.TrimSpace(req.Email), Name: req.Name, Role: req.Role, ClientID: p.ClientID}
	if req.ClientID != nil {
		u.ClientID = *req.ClientID
	}
	// Every bad field is named before the password is hashed, which costs
	// tens of milliseconds.
	v := u.FieldProblems()
	if msg := auth.CheckPasswordPolicy(req.Password, u.Email); msg != "" {
		v.Add("password", msg)
	}
	if err := v.Err(); err != nil {
		return err
	}
	if u.PasswordHash, err = auth.HashPassword(req.Password); err != nil {
		return err
	}
	if err := h.store.CreateUser(r.Context(), u); err != nil {
		return err
	}
	w.Header().Set("Location", "/users/"+u.ID)
	httpapi.JSON(w, http.StatusCreated, u)
	return nil
}

// find returns the user with id if p may see it, else ENOTFOUND.
func (h *Handler) find(r *http.Request, p tempwatch.Principal) (*tempwatch.User, error) {
	u, err := h.store.FindUserByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if err := tempwatch.AuthorizeUser(p, tempwatch.Read, u); err != nil {
		return nil, err
	}
	return u, nil
}

func (h *Handler) handleGet(w http.ResponseWriter, r *http.Request) error {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	u, err := h.find(r, p)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, u)
	return nil
}

func (h *Handler) handleList(w http.ResponseWriter, r *http.Request) error {
	p, page, err := httpapi.ListRequest(r)
	if err != nil {
		return err
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
		return err
	}
	var us []*tempwatch.User
	// A non-admin asking for another client's users gets an empty list, as
	// if that client had none.
	var ok bool
	if f.ClientID, ok = tempwatch.ListScope(p, f.ClientID); ok {
		if us, err = h.store.FindUsers(r.Context(), f); err != nil {
			return err
		}
	}
	httpapi.JSON(w, http.StatusOK, httpapi.NewPage(us, page.Limit, func(u *tempwatch.User) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: u.CreatedAt, ID: u.ID}
	}))
	return nil
}

// errOwnPassword refuses a password change of one's own account here: a
// stolen access token must not be enough to take the account for good.
var errOwnPassword = tempwatch.Invalid("password",
	"cannot be changed here for your own account: use POST /auth/password, which asks for the current password")

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

func (h *Handler) handleUpdate(w http.ResponseWriter, r *http.Request) error {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	var upd updateRequest
	if err := httpapi.DecodeJSON(r, &upd); err != nil {
		return err
	}
	u, err := h.find(r, p)
	if err != nil {
		return err
	}
	if u.ID == p.UserID && upd.Password != nil {
		return errOwnPassword
	}
	if !(u.ID == p.UserID && upd.selfService()) {
		if err := tempwatch.AuthorizeUser(p, tempwatch.Write, u); err != nil {
			return err
		}
	}
	role := u.Role
	if upd.Role != nil {
		role = *upd.Role
	}
	if err := tempwatch.AuthorizeGrant(p, role, upd.ClientID); err != nil {
		return err
	}
	if err := apply(u, upd); err != nil {
		return err
	}
	if err := h.store.UpdateUser(r.Context(), u); err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, u)
	return nil
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

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request) error {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	u, err := h.find(r, p)
	if err != nil {
		return err
	}
	if u.ID == p.UserID {
		return tempwatch.Errorf(tempwatch.EFORBIDDEN, "You cannot delete your own account.")
	}
	if err := tempwatch.AuthorizeUser(p, tempwatch.Write, u); err != nil {
		return err
	}
	if err := h.store.DeleteUser(r.Context(), u.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
