package apitest_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/openapi/openapitest"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// A change made through the API is in the audit trail with its caller and
// address, for the caller's client only: client A's admin sees it, client
// B's admin does not (not even by naming client A), A's viewer may not look.
func TestChangesThroughTheAPIAreAudited(t *testing.T) {
	t.Parallel()
	path, err := openapitest.FindTemplate()
	require.NoError(t, err)
	routes, err := openapitest.TemplateRoutes(path)
	require.NoError(t, err)
	fx := newFixture(t, routes)
	sensor := pgtest.MustSensor(t, fx.env.DB, fx.env.ClientA, "dev-"+random(), "key-"+random())
	token := func(p tempwatch.Principal) string { return apitest.MustSessionToken(t, fx.env.DB, fx.jwt, p) }

	res := apitest.DoToken(t, fx.api, token(fx.env.AdminA), "PATCH", "/sensors/"+sensor, `{"location":"Hall C"}`)
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))

	query := "/audit?entity=sensor&entity_id=" + sensor
	res = apitest.DoToken(t, fx.api, token(fx.env.AdminA), "GET", query, "")
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var page struct {
		Items []tempwatch.AuditEvent `json:"items"`
	}
	res.Decode(t, &page)
	require.Len(t, page.Items, 1, "%s", res.Body)
	ev := page.Items[0]
	assert.Equal(t, tempwatch.ActionUpdate, ev.Action)
	assert.Equal(t, fx.env.AdminA.UserID, ev.ActorID)
	assert.Equal(t, "192.0.2.1", ev.ActorAddress, "httptest's remote address")
	assert.Equal(t, fx.env.ClientA, ev.ClientID)
	assert.JSONEq(t, `"Hall C"`, string(mustField(t, ev.After, "location")))

	res = apitest.DoToken(t, fx.api, token(fx.env.Admin), "GET", query, "")
	require.Equal(t, http.StatusOK, res.Status)
	assert.Contains(t, string(res.Body), ev.ID, "an admin sees every client's events")
	for _, q := range []string{query, query + "&client_id=" + fx.env.ClientA} {
		res = apitest.DoToken(t, fx.api, token(fx.env.AdminB), "GET", q, "")
		require.Equal(t, http.StatusOK, res.Status)
		assert.NotContains(t, string(res.Body), ev.ID, "client B's admin: %s", q)
	}
	assert.Equal(t, http.StatusNotFound, apitest.DoToken(t, fx.api, token(fx.env.AdminB), "GET", "/audit/"+ev.ID, "").Status)
	assert.Equal(t, http.StatusForbidden, apitest.DoToken(t, fx.api, token(fx.env.ViewerA), "GET", query, "").Status)
	assert.Equal(t, http.StatusOK, apitest.DoToken(t, fx.api, token(fx.env.AdminA), "GET", "/audit/"+ev.ID, "").Status)
}

// mustField returns the JSON of field name of the object raw.
func mustField(t *testing.T, raw []byte, name string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &m), "%s", raw)
	require.Contains(t, m, name, "%s", raw)
	return m[name]
}
