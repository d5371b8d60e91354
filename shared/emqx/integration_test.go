package emqx_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/emqx"
	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/openapi/openapitest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/sensors"
)

// brokerAPI is one mqttauth function instance: its own in-process device
// cache over the shared PostgreSQL and Redis.
func brokerAPI(t *testing.T, env *apitest.Env, rc *redis.Client, opt ingest.DeviceCacheOptions) *fixture {
	t.Helper()
	store := redis.NewDeviceStore(rc, postgres.NewDeviceStore(env.DB))
	auth, err := deviceauth.New(ingest.NewDeviceCache(store, opt), deviceauth.Bridge{Password: bridgePass})
	require.NoError(t, err)
	h, err := emqx.NewHandler(auth, emqx.Config{Secret: secret, DeviceSession: time.Hour}, apitest.Discard(), nil)
	require.NoError(t, err)
	return &fixture{h: openapitest.Handler(t, h)}
}

// TestRealKeysThroughTheDeviceCache creates a sensor through the sensors
// API, connects with its key through the real cache (PostgreSQL, Redis, the
// in-process LRU), rotates and deletes it, and checks that the old key is
// refused within the in-process TTL: at once by an instance that had not
// cached it, and by the one that had once its entry expires.
func TestRealKeysThroughTheDeviceCache(t *testing.T) {
	t.Parallel()
	env := apitest.MustEnv(t)
	rc := redistest.MustAdapter(t)
	sensorsAPI := sensors.NewHandler(postgres.NewSensorStore(env.DB), redis.NewSensorCaches(rc, postgres.NewReadingStore(env.DB)), apitest.Discard())

	const localTTL = 300 * time.Millisecond
	opt := ingest.DeviceCacheOptions{LocalTTL: localTTL}
	warm := brokerAPI(t, env, rc, opt)

	resp := apitest.Do(t, sensorsAPI, &env.AdminA, "POST", "/sensors", `{"device_id":"fridge-1","name":"Fridge 1"}`)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var created struct {
		ID        string `json:"id"`
		DeviceKey string `json:"device_key"`
	}
	resp.Decode(t, &created)
	var clientSlug string
	require.NoError(t, env.DB.QueryRow(t.Context(), `SELECT slug FROM clients WHERE id = $1`, env.ClientA).Scan(&clientSlug))
	user := clientSlug + "/fridge-1"

	connect := func(fx *fixture, key string) emqx.AuthnResponse {
		t.Helper()
		r := fx.broker(t, emqx.AuthnPath, authnBody(user, user, key))
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var got emqx.AuthnResponse
		require.NoError(t, json.Unmarshal(r.body, &got))
		return got
	}
	got := connect(warm, created.DeviceKey)
	require.Equal(t, "allow", got.Result)
	assert.Equal(t, "eq tempwatch/"+clientSlug+"/sensors/fridge-1/readings", got.ACL[0].Topic)
	assert.Equal(t, "deny", connect(warm, created.DeviceKey+"x").Result, "a wrong key")

	resp = apitest.Do(t, sensorsAPI, &env.AdminA, "POST", "/sensors/"+created.ID+"/rotate-key", "")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	rotatedAt := time.Now()
	var rotated struct {
		DeviceKey string `json:"device_key"`
	}
	resp.Decode(t, &rotated)

	// Another instance (a cold function, or a broker retrying elsewhere):
	// rotate-key dropped the Redis entry, so the old key is asked of
	// PostgreSQL and refused at once; the new one works at once.
	cold := brokerAPI(t, env, rc, opt)
	assert.Equal(t, "deny", connect(cold, created.DeviceKey).Result, "the old key on an instance without it cached")
	assert.Equal(t, "allow", connect(cold, rotated.DeviceKey).Result, "the new key")
	assert.Equal(t, "allow", connect(warm, rotated.DeviceKey).Result, "the new key on the instance that cached the old")

	// The instance that cached the old key refuses it once the entry
	// expires: polled, so the test waits no longer than it must.
	require.Eventually(t, func() bool { return connect(warm, created.DeviceKey).Result == "deny" },
		localTTL+5*time.Second, 20*time.Millisecond, "the old key is still accepted")
	t.Logf("the rotated key was refused by the warm instance %v after rotate-key (local TTL %v)", time.Since(rotatedAt).Round(time.Millisecond), localTTL)

	// Deleting the sensor ends its key the same way.
	resp = apitest.Do(t, sensorsAPI, &env.AdminA, "DELETE", "/sensors/"+created.ID, "")
	require.Equal(t, http.StatusNoContent, resp.Status, string(resp.Body))
	deletedAt := time.Now()
	assert.Equal(t, "deny", connect(brokerAPI(t, env, rc, opt), rotated.DeviceKey).Result, "a deleted sensor's key on a fresh instance")
	require.Eventually(t, func() bool { return connect(cold, rotated.DeviceKey).Result == "deny" },
		localTTL+5*time.Second, 20*time.Millisecond, "the deleted sensor's key is still accepted")
	t.Logf("the deleted sensor's key was refused %v after the delete (local TTL %v)", time.Since(deletedAt).Round(time.Millisecond), localTTL)
}
