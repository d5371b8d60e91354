package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/devstack/stack/stacktest"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
)

// TestAPITourEndToEnd is the README's API tour against the real function
// bootstraps behind the emulated API Gateway: create the first admin with this
// command, log in, use the token, create a tenant and its client admin, and
// check tenant scoping, rate limiting by source address, and logout.
func TestAPITourEndToEnd(t *testing.T) {
	dbURL := pgtest.MustMigratedURL(t)
	_, prefix := redistest.MustClient(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-email", "admin@example.com"},
		config.MapEnv(map[string]string{"DATABASE_URL": dbURL, passwordEnv: "operator secret 123"}),
		strings.NewReader(""), &out, io.Discard))

	s, _ := stacktest.MustStart(t, stack.Config{
		Root: "../../..", Instances: 1, Only: []string{"auth", "users", "clients"},
		Env: map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redistest.URL(), "REDIS_PREFIX": prefix},
	})
	api := s.APIURL()
	call := func(method, path, token, body string) (int, http.Header, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, api+path, strings.NewReader(body))
		require.NoError(t, err)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		b, _ := io.ReadAll(resp.Body)
		if len(b) > 0 {
			require.NoError(t, json.Unmarshal(b, &m), string(b))
		}
		return resp.StatusCode, resp.Header, m
	}
	login := func(client, email, pw string) (int, http.Header, map[string]any) {
		return call("POST", "/auth/login", "", `{"client":"`+client+`","email":"`+email+`","password":"`+pw+`"}`)
	}

	status, _, body := login("", "admin@example.com", "operator secret 123")
	require.Equal(t, 200, status, body)
	admin := body["access_token"].(string)

	status, _, body = call("GET", "/auth/me", admin, "")
	require.Equal(t, 200, status, body)
	assert.Equal(t, "admin", body["role"])

	status, hdr, _ := call("POST", "/clients", "", `{"name":"Acme","slug":"acme"}`)
	assert.Equal(t, 401, status)
	assert.Contains(t, hdr.Get("WWW-Authenticate"), "Bearer")

	status, _, body = call("POST", "/clients", admin, `{"name":"Acme","slug":"acme","timezone":"Europe/Berlin"}`)
	require.Equal(t, 201, status, body)
	acme := body["id"].(string)
	status, _, body = call("POST", "/clients", admin, `{"name":"Polar","slug":"polar"}`)
	require.Equal(t, 201, status, body)
	polar := body["id"].(string)

	status, _, body = call("POST", "/users", admin, `{"email":"boss@acme.example","role":"client_admin","client_id":"`+acme+`","password":"acme chief passphrase"}`)
	require.Equal(t, 201, status, body)
	status, _, body = login("acme", "boss@acme.example", "acme chief passphrase")
	require.Equal(t, 200, status, body)
	boss := body["access_token"].(string)

	status, _, body = call("GET", "/clients", boss, "")
	require.Equal(t, 200, status, body)
	items := body["items"].([]any)
	require.Len(t, items, 1)
	assert.Equal(t, acme, items[0].(map[string]any)["id"])
	status, _, _ = call("GET", "/clients/"+polar, boss, "")
	assert.Equal(t, 404, status, "another tenant's id")
	status, _, _ = call("POST", "/users", boss, `{"email":"x@acme.example","role":"admin","password":"long enough password"}`)
	assert.Equal(t, 403, status, "no escalation")

	// Failed logins are counted per account: the sixth try is refused.
	for range 5 {
		status, _, _ = login("acme", "boss@acme.example", "wrong password!")
		require.Equal(t, 401, status)
	}
	status, hdr, _ = login("acme", "boss@acme.example", "acme chief passphrase")
	assert.Equal(t, 429, status)
	assert.NotEmpty(t, hdr.Get("Retry-After"))

	status, _, _ = call("POST", "/auth/logout", admin, "")
	require.Equal(t, 204, status)
	status, _, _ = call("GET", "/auth/me", admin, "")
	assert.Equal(t, 401, status, "a logged-out token is refused at once by the function that ended it")
	// Another function may hold the session as live in memory for up to
	// redis.CutoffLocalTTL (1 s): refused within it, polling.
	loggedOut := time.Now()
	assert.Eventually(t, func() bool {
		status, _, _ = call("GET", "/clients", admin, "")
		return status == 401
	}, 3*time.Second, 20*time.Millisecond, "a logged-out token is refused by every function")
	t.Logf("GET /clients refused %s after the logout", time.Since(loggedOut).Round(time.Millisecond))
}
