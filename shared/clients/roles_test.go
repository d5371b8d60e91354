package clients_test

// Fast tier: the /clients rules over a fake ClientService, no server.

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
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/clients"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// fakeClients holds clients A and B of tn, recording its writes in w.
func fakeClients(tn apitest.Tenants, w *apitest.Writes) *mock.ClientService {
	now := time.Now().UTC().Truncate(time.Second)
	byID := map[string]*tempwatch.Client{}
	for slug, id := range map[string]string{"client-a": tn.ClientA, "client-b": tn.ClientB} {
		byID[id] = &tempwatch.Client{ID: id, Name: slug, Slug: slug, Timezone: "UTC", CreatedAt: now, UpdatedAt: now}
	}
	find := func(id string) (*tempwatch.Client, error) {
		if c, ok := byID[id]; ok {
			return c, nil
		}
		return nil, tempwatch.NotFound("Client")
	}
	return &mock.ClientService{
		CreateClientFn: func(_ context.Context, c *tempwatch.Client) error {
			w.Add("CreateClient")
			c.ID, c.Timezone, c.CreatedAt, c.UpdatedAt = auth.NewID(), "UTC", now, now
			return nil
		},
		FindClientByIDFn: func(_ context.Context, id string) (*tempwatch.Client, error) { return find(id) },
		FindClientsFn: func(_ context.Context, f tempwatch.ClientFilter) ([]*tempwatch.Client, error) {
			return slices.DeleteFunc(slices.Collect(maps.Values(byID)), func(c *tempwatch.Client) bool {
				return f.OnlyID != "" && f.OnlyID != c.ID
			}), nil
		},
		UpdateClientFn: func(_ context.Context, id string, _ tempwatch.ClientUpdate) (*tempwatch.Client, error) {
			c, err := find(id)
			return c, w.Done("UpdateClient", err)
		},
		DeleteClientFn: func(_ context.Context, id string) ([]string, error) {
			_, err := find(id)
			return nil, w.Done("DeleteClient", err)
		},
	}
}

func TestClientRolesFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	a := "/clients/" + tn.ClientA
	apitest.CheckRoles(t, "ClientsFunction", tn, func(log *slog.Logger, w *apitest.Writes) http.Handler {
		return clients.NewHandler(fakeClients(tn, w), log)
	}, []apitest.RoleCase{
		{Route: "GET /clients", Want: [5]int{200, 200, 200, 200, 401}},
		{Route: "POST /clients", Body: `{"name":"New","slug":"new"}`, Want: [5]int{201, 403, 403, 403, 401}},
		{Route: "GET /clients/{id}", Path: a, Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "GET /clients/{id}", Name: "GET /clients/{id} of no client", Path: "/clients/" + auth.NewID(),
			Want: [5]int{404, 404, 404, 404, 401}},
		{Route: "PATCH /clients/{id}", Path: a, Body: `{"name":"Renamed","timezone":"Asia/Kolkata"}`, Want: [5]int{200, 200, 403, 404, 401}},
		{Route: "PATCH /clients/{id}", Name: "PATCH /clients/{id} slug", Path: a, Body: `{"slug":"new-slug"}`,
			Want: [5]int{200, 403, 403, 404, 401}},
		{Route: "DELETE /clients/{id}", Path: a, Want: [5]int{204, 403, 403, 404, 401}},
	})
}

// TestClientListScopeFast: the list a caller gets is the one the store was
// asked for, and a client's users ask only for their own client.
func TestClientListScopeFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	want := map[int]string{apitest.AsAdmin: "", apitest.AsAdminA: tn.ClientA, apitest.AsViewerA: tn.ClientA, apitest.AsAdminB: tn.ClientB}
	for i, only := range want {
		t.Run(apitest.CallerNames[i], func(t *testing.T) {
			t.Parallel()
			svc := fakeClients(tn, &apitest.Writes{})
			var asked []tempwatch.ClientFilter
			find := svc.FindClientsFn
			svc.FindClientsFn = func(ctx context.Context, f tempwatch.ClientFilter) ([]*tempwatch.Client, error) {
				asked = append(asked, f)
				return find(ctx, f)
			}
			p, _ := tn.Principal(i)
			resp := apitest.Do(t, clients.NewHandler(svc, apitest.Logger(t)), &p, "GET", "/clients?name=acme&limit=7", "")
			require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
			require.Len(t, asked, 1)
			assert.Equal(t, only, asked[0].OnlyID, "the scope of %s", apitest.CallerNames[i])
			assert.Equal(t, "acme", asked[0].Name)
			assert.Equal(t, 7, asked[0].Page.Limit)
		})
	}
}

func TestClientStoreFailuresFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	newAPI := func(failing func(svc *mock.ClientService, err error)) func(*slog.Logger, error) http.Handler {
		return func(log *slog.Logger, err error) http.Handler {
			svc := fakeClients(tn, &apitest.Writes{})
			failing(svc, err)
			return clients.NewHandler(svc, log)
		}
	}
	t.Run("find", func(t *testing.T) {
		apitest.CheckStoreFailures(t, tn.Admin, "GET", "/clients/"+tn.ClientA, "", newAPI(func(svc *mock.ClientService, err error) {
			svc.FindClientByIDFn = func(context.Context, string) (*tempwatch.Client, error) { return nil, err }
		}))
	})
	t.Run("update", func(t *testing.T) {
		apitest.CheckStoreFailures(t, tn.AdminA, "PATCH", "/clients/"+tn.ClientA, `{"name":"N"}`, newAPI(func(svc *mock.ClientService, err error) {
			svc.UpdateClientFn = func(context.Context, string, tempwatch.ClientUpdate) (*tempwatch.Client, error) { return nil, err }
		}))
	})
}
