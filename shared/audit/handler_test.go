package audit_test

// Fast tier: GET /audit's query over a fake audit log, no server.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/audit"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

func TestListPassesFiltersAndRefusesBadOnes(t *testing.T) {
	t.Parallel()
	jwt := apitest.MustJWT(t)
	tn := apitest.NewTenants()
	var got tempwatch.AuditFilter
	trail := &mock.AuditLog{FindAuditEventsFn: func(_ context.Context, f tempwatch.AuditFilter) ([]*tempwatch.AuditEvent, error) {
		got = f
		return nil, nil
	}}
	h := app.Middleware(apitest.Discard(), auth.NewVerifier(jwt), audit.NewHandler(trail, apitest.Discard()))
	actor := auth.NewID()

	t.Run("filters", func(t *testing.T) {
		res := apitest.DoToken(t, h, apitest.MustToken(t, jwt, tn.AdminA), "GET",
			"/audit?actor_id="+actor+"&entity=sensor&entity_id=s-1&action=update&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&limit=10", "")
		require.Equal(t, http.StatusOK, res.Status, string(res.Body))
		assert.Equal(t, tempwatch.AuditFilter{ClientID: tn.ClientA, ActorID: actor, Entity: "sensor", EntityID: "s-1", Action: "update",
			From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
			Page: tempwatch.PageRequest{Limit: 10}}, got, "a client admin's list is their client's")
		assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	})
	for _, tt := range []struct{ query, field string }{
		{"actor_id=bob", "actor_id"},
		{"client_id=acme", "client_id"},
		{"entity=reading", "entity"},
		{"entity_id=s-1", "entity"},
		{"action=rename", "action"},
		{"from=yesterday", "from"},
		{"from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"},
		{"limit=501", "limit"},
		{"entity=user&entity_id=" + strings.Repeat("x", 101), "entity_id"},
	} {
		t.Run(tt.query, func(t *testing.T) {
			res := apitest.DoToken(t, h, apitest.MustToken(t, jwt, tn.Admin), "GET", "/audit?"+tt.query, "")
			require.Equal(t, http.StatusBadRequest, res.Status, string(res.Body))
			var problem struct {
				Errors map[string]string `json:"errors"`
			}
			res.Decode(t, &problem)
			assert.Contains(t, problem.Errors, tt.field, "%s", res.Body)
		})
	}
}
