package clients_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/clients"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
)

func TestClientTenantRules(t *testing.T) {
	t.Parallel()
	cfg := apitest.MustJWT(t)

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
			principals := map[string]tempwatch.Principal{
				"admin":   {UserID: auth.NewID(), Role: tempwatch.RoleAdmin},
				"caA":     {UserID: auth.NewID(), ClientID: a, Role: tempwatch.RoleClientAdmin},
				"viewerA": {UserID: auth.NewID(), ClientID: a, Role: tempwatch.RoleViewer},
			}
			h := app.Middleware(apitest.Discard(), auth.NewVerifier(cfg), clients.NewHandler(postgres.NewClientStore(db), apitest.Discard()))

			path := strings.NewReplacer("{A}", a, "{B}", b).Replace(tt.path)
			token := ""
			if p, ok := principals[tt.as]; ok {
				token = apitest.MustToken(t, cfg, p)
			}
			resp := apitest.DoToken(t, h, token, tt.method, path, tt.body)
			assert.Equal(t, tt.want, resp.Status, "%s %s as %s: %s", tt.method, tt.path, tt.as, resp.Body)
		})
	}

	t.Run("non-admin lists only own client", func(t *testing.T) {
		t.Parallel()
		db := pgtest.MustDB(t)
		a := pgtest.MustClient(t, db, "client-a", "")
		pgtest.MustClient(t, db, "client-b", "")
		h := clients.NewHandler(postgres.NewClientStore(db), slog.New(slog.NewTextHandler(io.Discard, nil)))
		for _, role := range []string{tempwatch.RoleClientAdmin, tempwatch.RoleViewer} {
			req := httptest.NewRequest("GET", "/clients", nil)
			req = req.WithContext(tempwatch.WithPrincipal(req.Context(), tempwatch.Principal{UserID: auth.NewID(), ClientID: a, Role: role}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, 200, rec.Code)
			assert.Equal(t, 1, strings.Count(rec.Body.String(), `"slug"`), role)
			assert.Contains(t, rec.Body.String(), a)
		}
	})
}
