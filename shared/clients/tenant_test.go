package clients_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/clients"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
)

func TestClientTenantRules(t *testing.T) {
	t.Parallel()
	r := config.NewReader(config.MapEnv(map[string]string{"JWT_KEYS": auth.NewKey("k1")}))
	cfg := auth.LoadJWTConfig(r)
	require.NoError(t, r.Err())
	issuer := auth.NewIssuer(cfg)

	tests := []struct {
		name, as, method, path, body string
		want                         int
	}{
		{"no token list", "", "GET", "/clients", "", 401},
		{"no token get", "", "GET", "/clients/{A}", "", 401},
		{"admin gets any", "admin", "GET", "/clients/{B}", "", 200},
		{"client admin gets own", "caA", "GET", "/clients/{A}", "", 200},
		{"viewer gets own", "viewerA", "GET", "/clients/{A}", "", 200},
		{"client admin gets other: 404", "caA", "GET", "/clients/{B}", "", 404},
		{"viewer gets other: 404", "viewerA", "GET", "/clients/{B}", "", 404},
		{"admin creates", "admin", "POST", "/clients", `{"name":"N","slug":"n"}`, 201},
		{"client admin creates: 403", "caA", "POST", "/clients", `{"name":"N","slug":"n"}`, 403},
		{"viewer creates: 403", "viewerA", "POST", "/clients", `{"name":"N","slug":"n"}`, 403},
		{"client admin renames own", "caA", "PATCH", "/clients/{A}", `{"name":"New","timezone":"Asia/Kolkata"}`, 200},
		{"client admin changes own slug: 403", "caA", "PATCH", "/clients/{A}", `{"slug":"new-slug"}`, 403},
		{"client admin renames other: 404", "caA", "PATCH", "/clients/{B}", `{"name":"New"}`, 404},
		{"viewer renames own: 403", "viewerA", "PATCH", "/clients/{A}", `{"name":"New"}`, 403},
		{"admin changes slug", "admin", "PATCH", "/clients/{A}", `{"slug":"new-slug"}`, 200},
		{"client admin deletes own: 403", "caA", "DELETE", "/clients/{A}", "", 403},
		{"client admin deletes other: 404", "caA", "DELETE", "/clients/{B}", "", 404},
		{"viewer deletes other: 404", "viewerA", "DELETE", "/clients/{B}", "", 404},
		{"admin deletes", "admin", "DELETE", "/clients/{B}", "", 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.MustDB(t)
			a, b := pgtest.MustClient(t, db, "client-a", ""), pgtest.MustClient(t, db, "client-b", "")
			principals := map[string]auth.Principal{
				"admin":   {UserID: auth.NewID(), Role: auth.RoleAdmin},
				"caA":     {UserID: auth.NewID(), ClientID: a, Role: auth.RoleClientAdmin},
				"viewerA": {UserID: auth.NewID(), ClientID: a, Role: auth.RoleViewer},
			}
			srv := httptest.NewServer(auth.Middleware(auth.NewVerifier(cfg),
				clients.NewHandler(postgres.NewClientStore(db), slog.New(slog.NewTextHandler(io.Discard, nil)))))
			defer srv.Close()

			path := strings.NewReplacer("{A}", a, "{B}", b).Replace(tt.path)
			req, err := http.NewRequest(tt.method, srv.URL+path, strings.NewReader(tt.body))
			require.NoError(t, err)
			if p, ok := principals[tt.as]; ok {
				tok, err := issuer.Issue(p, "")
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer "+tok.Token)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, tt.want, resp.StatusCode, "%s %s as %s: %s", tt.method, tt.path, tt.as, body)
		})
	}

	t.Run("non-admin lists only own client", func(t *testing.T) {
		t.Parallel()
		db := pgtest.MustDB(t)
		a := pgtest.MustClient(t, db, "client-a", "")
		pgtest.MustClient(t, db, "client-b", "")
		h := clients.NewHandler(postgres.NewClientStore(db), slog.New(slog.NewTextHandler(io.Discard, nil)))
		for _, role := range []string{auth.RoleClientAdmin, auth.RoleViewer} {
			req := httptest.NewRequest("GET", "/clients", nil)
			req = req.WithContext(auth.WithPrincipal(req.Context(), auth.Principal{UserID: auth.NewID(), ClientID: a, Role: role}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, 200, rec.Code)
			assert.Equal(t, 1, strings.Count(rec.Body.String(), `"slug"`), role)
			assert.Contains(t, rec.Body.String(), a)
		}
	})
}
