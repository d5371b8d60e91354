package clients_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/clients"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// newHandler serves /clients on a fresh database (tenant rules: TestClientTenantRules).
func newHandler(t *testing.T) http.Handler {
	t.Helper()
	return clients.NewHandler(postgres.NewClientStore(pgtest.MustDB(t)), apitest.Discard())
}

var admin = &tempwatch.Principal{UserID: "00000000-0000-4000-8000-000000000001", Role: tempwatch.RoleAdmin}

// do serves method path to an admin and returns the response and its JSON body.
func do(t *testing.T, h http.Handler, method, path, body string) (apitest.Response, map[string]any) {
	t.Helper()
	resp := apitest.Do(t, h, admin, method, path, body)
	return resp, resp.JSON(t)
}

func TestClientLifecycle(t *testing.T) {
	t.Parallel()
	h := newHandler(t)

	resp, c := do(t, h, "POST", "/clients", `{"name":"Acme Cold","slug":"acme-cold","timezone":"Europe/Berlin"}`)
	require.Equal(t, http.StatusCreated, resp.Status, c)
	id := c["id"].(string)
	assert.Equal(t, "/clients/"+id, resp.Header.Get("Location"))
	assert.Equal(t, "Europe/Berlin", c["timezone"])

	resp, got := do(t, h, "GET", "/clients/"+id, "")
	require.Equal(t, http.StatusOK, resp.Status)
	assert.Equal(t, "Acme Cold", got["name"])

	resp, got = do(t, h, "PATCH", "/clients/"+id, `{"name":"Acme Frozen"}`)
	require.Equal(t, http.StatusOK, resp.Status, got)
	assert.Equal(t, "Acme Frozen", got["name"])
	assert.Equal(t, "acme-cold", got["slug"], "PATCH must leave unset fields alone")

	resp, got = do(t, h, "POST", "/clients", `{"name":"Other","slug":"acme-cold"}`)
	assert.Equal(t, http.StatusConflict, resp.Status)
	assert.Equal(t, tempwatch.ECONFLICT, got["code"])
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))

	resp, _ = do(t, h, "DELETE", "/clients/"+id, "")
	assert.Equal(t, http.StatusNoContent, resp.Status)
	resp, got = do(t, h, "GET", "/clients/"+id, "")
	assert.Equal(t, http.StatusNotFound, resp.Status)
	assert.Equal(t, tempwatch.ENOTFOUND, got["code"])
	resp, _ = do(t, h, "DELETE", "/clients/"+id, "")
	assert.Equal(t, http.StatusNotFound, resp.Status)
}

func TestClientValidation(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantFields []string
	}{
		{"missing fields", "POST", "/clients", `{}`, 400, []string{"name", "slug"}},
		{"bad slug and zone", "POST", "/clients", `{"name":"A","slug":"Bad Slug","timezone":"Mars/Olympus"}`, 400, []string{"slug", "timezone"}},
		{"unknown field", "POST", "/clients", `{"name":"A","slug":"a","id":"x"}`, 400, []string{"id"}},
		{"wrong type", "POST", "/clients", `{"name":5,"slug":"a"}`, 400, []string{"name"}},
		{"not json", "POST", "/clients", `{"name":`, 400, nil},
		{"two values", "POST", "/clients", `{"name":"a","slug":"a"} {}`, 400, nil},
		{"patch bad zone", "PATCH", "/clients/00000000-0000-0000-0000-000000000000", `{"timezone":""}`, 400, []string{"timezone"}},
		{"malformed id", "GET", "/clients/not-a-uuid", ``, 404, nil},
		{"unknown route", "GET", "/nowhere", ``, 404, nil},
		{"limit too large", "GET", "/clients?limit=501", ``, 400, []string{"limit"}},
		{"limit zero", "GET", "/clients?limit=0", ``, 400, []string{"limit"}},
		{"bad cursor", "GET", "/clients?cursor=zzz", ``, 400, []string{"cursor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, h, tt.method, tt.path, tt.body)
			assert.Equal(t, tt.wantStatus, resp.Status, "%s %s = %v", tt.method, tt.path, body)
			assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			fields, _ := body["errors"].(map[string]any)
			for _, f := range tt.wantFields {
				assert.Contains(t, fields, f, "problem must name field %q: %v", f, body)
			}
		})
	}
}

func TestClientListPagesNewestFirst(t *testing.T) {
	t.Parallel()
	h := newHandler(t)
	const n = 23
	for i := range n {
		resp, body := do(t, h, "POST", "/clients", `{"name":"c","slug":"c-`+string(rune('a'+i))+`"}`)
		require.Equal(t, http.StatusCreated, resp.Status, body)
	}
	do(t, h, "POST", "/clients", `{"name":"Polar Labs","slug":"polar"}`)

	var seen []httpPageItem
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10, "paging does not end")
		path := "/clients?limit=5&name=c"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page httpapi.Page[httpPageItem]
		apitest.Do(t, h, admin, "GET", path, "").Decode(t, &page)
		seen = append(seen, page.Items...)
		if !page.HasMore {
			break
		}
		cursor = page.NextCursor
	}
	require.Len(t, seen, n, "name filter must exclude Polar Labs and every client appears once")
	ids := map[string]bool{}
	for i, c := range seen {
		assert.False(t, ids[c.ID], "client %s listed twice", c.ID)
		ids[c.ID] = true
		if i > 0 {
			prev := seen[i-1]
			assert.True(t, prev.CreatedAt.After(c.CreatedAt) || (prev.CreatedAt.Equal(c.CreatedAt) && prev.ID > c.ID),
				"order broken at %d: %v then %v", i, prev, c)
		}
	}
}

type httpPageItem struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
}
