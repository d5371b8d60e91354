package webhooks_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/webhooks"
)

// TestWebhookInputIsValidated sends what a client admin might get wrong or
// try on purpose: each is a 400 naming the field, with nothing stored.
func TestWebhookInputIsValidated(t *testing.T) {
	env := apitest.MustEnv(t)
	api := webhooks.NewHandler(postgres.NewWebhookStore(env.DB), webhooks.NewGuard(), apitest.Logger(t))
	resp := apitest.Do(t, api, &env.AdminA, "POST", "/webhooks", `{"url":"https://hooks.example.com/a"}`)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	id := resp.JSON(t)["id"].(string)

	tests := []struct {
		name, method, path, body, field string
	}{
		{"no url", "POST", "/webhooks", `{}`, "url"},
		{"loopback", "POST", "/webhooks", `{"url":"http://127.0.0.1:8080/"}`, "url"},
		{"metadata", "POST", "/webhooks", `{"url":"http://169.254.169.254/latest/meta-data/"}`, "url"},
		{"localhost", "POST", "/webhooks", `{"url":"http://localhost:8080/"}`, "url"},
		{"private", "POST", "/webhooks", `{"url":"http://10.0.0.1/"}`, "url"},
		{"mapped loopback", "POST", "/webhooks", `{"url":"http://[::ffff:127.0.0.1]/"}`, "url"},
		{"IPv6 loopback", "POST", "/webhooks", `{"url":"http://[::1]/"}`, "url"},
		{"scheme", "POST", "/webhooks", `{"url":"file:///etc/passwd"}`, "url"},
		{"too long", "POST", "/webhooks", fmt.Sprintf(`{"url":"https://hooks.example.com/%s"}`, strings.Repeat("a", 2100)), "url"},
		{"url type", "POST", "/webhooks", `{"url":5}`, "url"},
		{"unknown event", "POST", "/webhooks", `{"url":"https://hooks.example.com/","events":["alarm.exploded"]}`, "events[0]"},
		{"no events", "POST", "/webhooks", `{"url":"https://hooks.example.com/","events":[]}`, "events"},
		{"event twice", "POST", "/webhooks", `{"url":"https://hooks.example.com/","events":["alarm.opened","alarm.opened"]}`, "events[1]"},
		{"secret is not writable", "POST", "/webhooks", `{"url":"https://hooks.example.com/","secret":"mine"}`, "secret"},
		{"client id", "POST", "/webhooks", `{"url":"https://hooks.example.com/","client_id":"nope"}`, "client_id"},
		{"patch url", "PATCH", "/webhooks/" + id, `{"url":"http://192.168.0.1/"}`, "url"},
		{"patch empty url", "PATCH", "/webhooks/" + id, `{"url":""}`, "url"},
		{"patch events", "PATCH", "/webhooks/" + id, `{"events":[]}`, "events"},
		{"patch enabled", "PATCH", "/webhooks/" + id, `{"enabled":"yes"}`, "enabled"},
		{"list client", "GET", "/webhooks?client_id=nope", "", "client_id"},
		{"deliveries state", "GET", "/webhooks/" + id + "/deliveries?state=lost", "", "state"},
		{"deliveries limit", "GET", "/webhooks/" + id + "/deliveries?limit=501", "", "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := apitest.Do(t, api, &env.AdminA, tt.method, tt.path, tt.body)
			require.Equal(t, http.StatusBadRequest, resp.Status, string(resp.Body))
			errs, _ := resp.JSON(t)["errors"].(map[string]any)
			assert.Contains(t, errs, tt.field, "the 400 names %s: %s", tt.field, resp.Body)
		})
	}

	var n int
	require.NoError(t, env.DB.QueryRow(t.Context(), `SELECT count(*) FROM webhooks`).Scan(&n))
	assert.Equal(t, 1, n, "no refused webhook was stored")
	resp = apitest.Do(t, api, &env.AdminA, "GET", "/webhooks/"+id, "")
	assert.Equal(t, "https://hooks.example.com/a", resp.JSON(t)["url"], "no refused change was stored")
}

// TestWebhookSecretIsShownOnlyOnCreateAndRotate, and a client has at most
// tempwatch.MaxWebhooksPerClient webhooks.
func TestWebhookSecretIsShownOnlyOnCreateAndRotate(t *testing.T) {
	env := apitest.MustEnv(t)
	api := webhooks.NewHandler(postgres.NewWebhookStore(env.DB), webhooks.NewGuard(), apitest.Logger(t))
	resp := apitest.Do(t, api, &env.AdminA, "POST", "/webhooks", `{"url":"https://hooks.example.com/a","events":["alarm.opened"]}`)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	body := resp.JSON(t)
	id, secret := body["id"].(string), body["secret"].(string)
	assert.True(t, strings.HasPrefix(secret, "whsec_"), secret)
	assert.Equal(t, "/webhooks/"+id, resp.Header.Get("Location"))
	assert.Equal(t, []any{"alarm.opened"}, body["events"])

	for _, path := range []string{"/webhooks/" + id, "/webhooks", "/webhooks/" + id + "/deliveries"} {
		resp := apitest.Do(t, api, &env.AdminA, "GET", path, "")
		require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
		assert.NotContains(t, string(resp.Body), secret, "GET %s shows no secret", path)
		assert.NotContains(t, string(resp.Body), `"secret"`, "GET %s has no secret field", path)
	}
	resp = apitest.Do(t, api, &env.AdminA, "PATCH", "/webhooks/"+id, `{"url":"https://hooks.example.com/b","enabled":false}`)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	assert.NotContains(t, string(resp.Body), "secret")
	assert.Equal(t, false, resp.JSON(t)["enabled"])

	resp = apitest.Do(t, api, &env.AdminA, "POST", "/webhooks/"+id+"/secret", "")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	rotated := resp.JSON(t)["secret"].(string)
	assert.NotEqual(t, secret, rotated)
	var stored string
	require.NoError(t, env.DB.QueryRow(t.Context(), `SELECT secret FROM webhooks WHERE id = $1`, id).Scan(&stored))
	assert.Equal(t, rotated, stored)

	rows, err := env.DB.Query(t.Context(), `SELECT coalesce(before::text, ''), coalesce(after::text, ''), action
		FROM audit_events WHERE entity = 'webhook' AND entity_id = $1`, id)
	require.NoError(t, err)
	actions := 0
	for rows.Next() {
		var before, after, action string
		require.NoError(t, rows.Scan(&before, &after, &action))
		assert.NotContains(t, before+after, "whsec_", "the audit trail holds no secret")
		actions++
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, 3, actions, "create, update and the secret's rotation are audited")

	for i := 1; i < tempwatch.MaxWebhooksPerClient; i++ {
		resp := apitest.Do(t, api, &env.AdminA, "POST", "/webhooks", fmt.Sprintf(`{"url":"https://hooks.example.com/%d"}`, i))
		require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	}
	resp = apitest.Do(t, api, &env.AdminA, "POST", "/webhooks", `{"url":"https://hooks.example.com/one-too-many"}`)
	assert.Equal(t, http.StatusConflict, resp.Status, string(resp.Body))
	resp = apitest.Do(t, api, &env.AdminB, "POST", "/webhooks", `{"url":"https://hooks.example.com/b"}`)
	assert.Equal(t, http.StatusCreated, resp.Status, "the limit is per client: %s", resp.Body)

	resp = apitest.Do(t, api, &env.AdminA, "DELETE", "/webhooks/"+id, "")
	assert.Equal(t, http.StatusNoContent, resp.Status, string(resp.Body))
	resp = apitest.Do(t, api, &env.AdminA, "GET", "/webhooks/"+id, "")
	assert.Equal(t, http.StatusNotFound, resp.Status, string(resp.Body))
}
