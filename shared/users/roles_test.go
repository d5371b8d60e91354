package users_test

// Fast tier: the /users rules over a fake UserStore, no server.

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
	"github.com/tempwatch/tempwatch/shared/users"
)

// userWorld is the accounts the callers act on: a viewer of client A and
// an admin, neither of them a caller.
type userWorld struct {
	tn             apitest.Tenants
	ViewerA, Admin string
	// EventA is an audit event of client A; EventAdmin one of no client
	// (an admin's account).
	EventA, EventAdmin string
}

func newUserWorld() userWorld {
	return userWorld{tn: apitest.NewTenants(), ViewerA: auth.NewID(), Admin: auth.NewID(),
		EventA: auth.NewID(), EventAdmin: auth.NewID()}
}

// fakeAudit holds the world's two audit events.
func (uw userWorld) fakeAudit() *mock.AuditLog {
	now := time.Now().UTC()
	events := []*tempwatch.AuditEvent{
		{ID: uw.EventA, At: now, ClientID: uw.tn.ClientA, Action: tempwatch.ActionUpdate, Entity: tempwatch.AuditUser, EntityID: uw.ViewerA},
		{ID: uw.EventAdmin, At: now, Action: tempwatch.ActionLogin, Entity: tempwatch.AuditUser, EntityID: uw.Admin},
	}
	return &mock.AuditLog{
		FindAuditEventsFn: func(_ context.Context, f tempwatch.AuditFilter) ([]*tempwatch.AuditEvent, error) {
			return slices.DeleteFunc(slices.Clone(events), func(e *tempwatch.AuditEvent) bool {
				return f.ClientID != "" && f.ClientID != e.ClientID
			}), nil
		},
		FindAuditEventByIDFn: func(_ context.Context, id string) (*tempwatch.AuditEvent, error) {
			for _, e := range events {
				if e.ID == id {
					return e, nil
				}
			}
			return nil, tempwatch.NotFound("Audit event")
		},
	}
}

// fakeUsers holds the world's accounts (fresh copies for each store),
// recording writes in w.
func (uw userWorld) fakeUsers(w *apitest.Writes) *mock.UserStore {
	now := time.Now().UTC().Truncate(time.Second)
	byID := map[string]*tempwatch.User{
		uw.ViewerA: {ID: uw.ViewerA, ClientID: uw.tn.ClientA, Email: "viewer@a.test", Role: tempwatch.RoleViewer, CreatedAt: now, UpdatedAt: now},
		uw.Admin:   {ID: uw.Admin, Email: "admin@tempwatch.test", Role: tempwatch.RoleAdmin, CreatedAt: now, UpdatedAt: now},
	}
	find := func(id string) (*tempwatch.User, error) {
		if u, ok := byID[id]; ok {
			return u, nil
		}
		return nil, tempwatch.NotFound("User")
	}
	return &mock.UserStore{
		CreateUserFn: func(_ context.Context, u *tempwatch.User) error {
			w.Add("CreateUser")
			u.ID, u.CreatedAt, u.UpdatedAt = auth.NewID(), now, now
			return nil
		},
		FindUserByIDFn: func(_ context.Context, id string) (*tempwatch.User, error) { return find(id) },
		FindUsersFn: func(_ context.Context, f tempwatch.UserFilter) ([]*tempwatch.User, error) {
			return slices.DeleteFunc(slices.Collect(maps.Values(byID)), func(u *tempwatch.User) bool {
				return f.ClientID != "" && f.ClientID != u.ClientID
			}), nil
		},
		UpdateUserFn: func(_ context.Context, u *tempwatch.User) error {
			_, err := find(u.ID)
			return w.Done("UpdateUser", err)
		},
		DeleteUserFn: func(_ context.Context, id string) error {
			_, err := find(id)
			return w.Done("DeleteUser", err)
		},
	}
}

func TestUserRolesFast(t *testing.T) {
	t.Parallel()
	uw := newUserWorld()
	a, admin, clientA, clientB := "/users/"+uw.ViewerA, "/users/"+uw.Admin, uw.tn.ClientA, uw.tn.ClientB
	newUser := func(role, clientID string) string {
		body := `{"email":"new@example.test","role":"` + role + `","password":"correct horse battery staple"`
		if clientID != "" {
			body += `,"client_id":"` + clientID + `"`
		}
		return body + "}"
	}
	apitest.CheckRoles(t, "UsersFunction", uw.tn, func(log *slog.Logger, w *apitest.Writes) http.Handler {
		return app.UsersRoutes(uw.fakeUsers(w), uw.fakeAudit(), log)
	}, []apitest.RoleCase{
		{Route: "GET /audit", Want: [5]int{200, 200, 403, 200, 401}},
		{Route: "GET /audit", Name: "GET /audit of client B", Path: "/audit?client_id=" + clientB, Want: [5]int{200, 200, 403, 200, 401}},
		{Route: "GET /audit/{id}", Path: "/audit/" + uw.EventA, Want: [5]int{200, 200, 403, 404, 401}},
		{Route: "GET /audit/{id}", Name: "GET /audit/{id} of no client", Path: "/audit/" + uw.EventAdmin, Want: [5]int{200, 404, 403, 404, 401}},
		{Route: "GET /users", Want: [5]int{200, 200, 200, 200, 401}},
		{Route: "POST /users", Body: newUser("viewer", clientA), Want: [5]int{201, 201, 403, 404, 401}},
		{Route: "POST /users", Name: "POST /users client_admin", Body: newUser("client_admin", clientA), Want: [5]int{201, 201, 403, 404, 401}},
		{Route: "POST /users", Name: "POST /users admin", Body: newUser("admin", ""), Want: [5]int{201, 403, 403, 403, 401}},
		{Route: "GET /users/{id}", Path: a, Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "GET /users/{id}", Name: "GET /users/{id} of an admin", Path: admin, Want: [5]int{200, 404, 404, 404, 401}},
		{Route: "PATCH /users/{id}", Path: a, Body: `{"name":"Renamed"}`, Want: [5]int{200, 200, 403, 404, 401}},
		{Route: "PATCH /users/{id}", Name: "PATCH /users/{id} password (a reset)", Path: a, Body: `{"password":"correct horse battery staple"}`,
			Want: [5]int{200, 200, 403, 404, 401}},
		{Route: "PATCH /users/{id}", Name: "PATCH /users/{id} to admin", Path: a, Body: `{"role":"admin"}`, Want: [5]int{200, 403, 403, 404, 401}},
		{Route: "PATCH /users/{id}", Name: "PATCH /users/{id} to client B", Path: a, Body: `{"client_id":"` + clientB + `"}`,
			Want: [5]int{200, 404, 403, 404, 401}},
		{Route: "PATCH /users/{id}", Name: "PATCH /users/{id} of an admin", Path: admin, Body: `{"name":"Renamed"}`,
			Want: [5]int{200, 404, 404, 404, 401}},
		{Route: "DELETE /users/{id}", Path: a, Want: [5]int{204, 204, 403, 404, 401}},
		{Route: "DELETE /users/{id}", Name: "DELETE /users/{id} of an admin", Path: admin, Want: [5]int{204, 404, 404, 404, 401}},
	})
}

// TestUserListScopeFast: the store is asked for the users each caller may
// list; a client's user naming another client is not asked at all.
func TestUserListScopeFast(t *testing.T) {
	t.Parallel()
	uw := newUserWorld()
	tests := []struct {
		name     string
		as       int
		clientID string // asked for
		want     []string
	}{
		{"admin asking for every client", apitest.AsAdmin, "", []string{""}},
		{"admin asking for client B", apitest.AsAdmin, uw.tn.ClientB, []string{uw.tn.ClientB}},
		{"client_admin of A asking for every client", apitest.AsAdminA, "", []string{uw.tn.ClientA}},
		{"viewer of A asking for client A", apitest.AsViewerA, uw.tn.ClientA, []string{uw.tn.ClientA}},
		{"client_admin of A asking for client B", apitest.AsAdminA, uw.tn.ClientB, nil},
		{"client_admin of B asking for every client", apitest.AsAdminB, "", []string{uw.tn.ClientB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := uw.fakeUsers(&apitest.Writes{})
			var asked []string
			find := store.FindUsersFn
			store.FindUsersFn = func(ctx context.Context, f tempwatch.UserFilter) ([]*tempwatch.User, error) {
				asked = append(asked, f.ClientID)
				return find(ctx, f)
			}
			p, _ := uw.tn.Principal(tt.as)
			resp := apitest.Do(t, users.NewHandler(store, apitest.Logger(t)), &p, "GET", "/users?client_id="+tt.clientID, "")
			require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
			assert.Equal(t, tt.want, asked)
			if tt.want == nil {
				assert.Empty(t, resp.JSON(t)["items"], "another client's list is empty, as if it had no users")
			}
		})
	}
}

func TestUserStoreFailuresFast(t *testing.T) {
	t.Parallel()
	uw := newUserWorld()
	apitest.CheckStoreFailures(t, uw.tn.AdminA, "PATCH", "/users/"+uw.ViewerA, `{"name":"N"}`, func(log *slog.Logger, err error) http.Handler {
		store := uw.fakeUsers(&apitest.Writes{})
		store.UpdateUserFn = func(context.Context, *tempwatch.User) error { return err }
		return users.NewHandler(store, log)
	})
}
