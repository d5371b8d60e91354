package clients_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/clients"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// newServer serves /clients to an admin (tenant rules: TestClientTenantRules).
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	db := pgtest.MustDB(t)
	h := clients.NewHandler(postgres.NewClientStore(db), slog.New(slog.NewTextHandler(io.Discard, nil)))
	admin := auth.Principal{UserID: "00000000-0000-4000-8000-000000000001", Role: auth.RoleAdmin}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), admin)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	if resp.StatusCode != http.StatusNoContent {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	}
	return resp, out
}

func TestClientLifecycle(t *testing.T) {
	t.Parallel()
	srv := newServer(t)

	resp, c := do(t, "POST", srv.URL+"/clients", `{"name":"Acme Cold","slug":"acme-cold","timezone":"Europe/Berlin"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, c)
	id := c["id"].(string)
	assert.Equal(t, "/clients/"+id, resp.Header.Get("Location"))
	assert.Equal(t, "Europe/Berlin", c["timezone"])

	resp, got := do(t, "GET", srv.URL+"/clients/"+id, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Acme Cold", got["name"])

	resp, got = do(t, "PATCH", srv.URL+"/clients/"+id, `{"name":"Acme Frozen"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	assert.Equal(t, "Acme Frozen", got["name"])
	assert.Equal(t, "acme-cold", got["slug"], "PATCH must leave unset fields alone")

	resp, got = do(t, "POST", srv.URL+"/clients", `{"name":"Other","slug":"acme-cold"}`)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, tempwatch.ECONFLICT, got["code"])
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))

	resp, _ = do(t, "DELETE", srv.URL+"/clients/"+id, "")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, got = do(t, "GET", srv.URL+"/clients/"+id, "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, tempwatch.ENOTFOUND, got["code"])
	resp, _ = do(t, "DELETE", srv.URL+"/clients/"+id, "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestClientValidation(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
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
			resp, body := do(t, tt.method, srv.URL+tt.path, tt.body)
			assert.Equal(t, tt.wantStatus, resp.StatusCode, "%s %s = %v", tt.method, tt.path, body)
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
	srv := newServer(t)
	const n = 23
	for i := range n {
		resp, body := do(t, "POST", srv.URL+"/clients", `{"name":"c","slug":"c-`+string(rune('a'+i))+`"}`)
		require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	}
	do(t, "POST", srv.URL+"/clients", `{"name":"Polar Labs","slug":"polar"}`)

	var seen []httpPageItem
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10, "paging does not end")
		url := srv.URL + "/clients?limit=5&name=c"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		resp, err := http.Get(url)
		require.NoError(t, err)
		var page httpapi.Page[httpPageItem]
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
		resp.Body.Close()
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
