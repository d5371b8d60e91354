package stack_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/devstack/stack/stacktest"
)

// TestClientsEndToEnd runs the real clients function from the repository's
// template.yaml behind the emulated gateway, with an embedded MQTT broker
// and (unless MONGODB_URL is set) an embedded FerretDB.
func TestClientsEndToEnd(t *testing.T) {
	env := stacktest.Env(t)
	env["LOG_LEVEL"] = "debug"
	jwtKeys := env["JWT_SIGNING_KEYS"]
	s, _ := stacktest.MustStart(t, stack.Config{Root: "../../..", Instances: 2, Only: []string{"clients"}, Env: env})

	t.Run("embedded servers", func(t *testing.T) {
		assert.Regexp(t, `^tcp://127\.0\.0\.1:\d+$`, s.MQTTURL())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		client, err := mongo.Connect(options.Client().ApplyURI(s.MongoDBURL()))
		require.NoError(t, err)
		defer func() { _ = client.Disconnect(ctx) }()
		coll := client.Database("devstack_e2e_" + hex.EncodeToString([]byte(t.Name()))[:8]).Collection("c")
		_, err = coll.InsertOne(ctx, bson.D{{Key: "a", Value: 1}})
		require.NoError(t, err)
		n, err := coll.CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
		_ = coll.Drop(ctx)
	})

	api := s.APIURL()
	resp, body := do(t, "GET", api+"/clients", nil, nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no token: %s", body)

	// The functions verify with the public half devstack derived; the test
	// signs as the auth function would.
	bearer := "Bearer " + stacktest.MustAdminToken(t, env["DATABASE_URL"], jwtKeys)
	jsonAuthz := http.Header{"Content-Type": {"application/json"}, "Authorization": {bearer}}
	authz := http.Header{"Authorization": {bearer}}
	resp, body = do(t, "POST", api+"/clients", strings.NewReader(`{"name":"Acme","slug":"acme","timezone":"Europe/Berlin"}`),
		jsonAuthz)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	var created struct{ ID, Name, Slug, Timezone string }
	require.NoError(t, json.Unmarshal(body, &created))
	require.NotEmpty(t, created.ID)
	assert.Equal(t, "Acme", created.Name)
	assert.Equal(t, "acme", created.Slug)
	assert.Equal(t, "Europe/Berlin", created.Timezone)

	resp, body = do(t, "POST", api+"/clients", strings.NewReader(`{"name":"Acme 2","slug":"acme","timezone":"UTC"}`),
		jsonAuthz)
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "duplicate slug: %s", body)

	resp, body = do(t, "GET", api+"/clients/"+created.ID, nil, authz)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, resp.Header.Get("Content-Type"), "application/json")
	var got struct{ ID, Name string }
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, created.ID, got.ID)

	resp, body = do(t, "GET", api+"/clients?limit=10", nil, authz)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
		HasMore    bool `json:"has_more"`
		NextCursor any  `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list.Items, 1)
	assert.Equal(t, created.ID, list.Items[0].ID)
	assert.False(t, list.HasMore)

	resp, body = do(t, "PATCH", api+"/clients/"+created.ID, strings.NewReader(`{"name":"Acme GmbH"}`),
		jsonAuthz)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, "Acme GmbH", got.Name)

	resp, body = do(t, "DELETE", api+"/clients/"+created.ID, nil, authz)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, string(body))

	resp, body = do(t, "GET", api+"/clients/"+created.ID, nil, authz)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, string(body))
	assert.Contains(t, resp.Header.Get("Content-Type"), "application/problem+json")

	resp, _ = do(t, "PUT", api+"/clients/"+created.ID, nil, authz)
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}
