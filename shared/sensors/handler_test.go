package sensors_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/sensors"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func newHandler(t *testing.T) (*apitest.Env, http.Handler) {
	t.Helper()
	env := apitest.MustEnv(t)
	caches := redis.NewSensorCaches(redistest.MustAdapter(t), postgres.NewReadingStore(env.DB))
	return env, sensors.NewHandler(postgres.NewSensorStore(env.DB), caches, apitest.Discard())
}

var keyPattern = regexp.MustCompile(`^twk_[A-Za-z0-9_-]{43}$`)

// sensorsWithHash counts sensors whose stored hash is that of key.
func sensorsWithHash(t *testing.T, env *apitest.Env, key string) int {
	t.Helper()
	var n int
	require.NoError(t, env.DB.QueryRow(context.Background(),
		`SELECT count(*) FROM sensors WHERE device_key_hash = $1`, tempwatch.HashDeviceKey(key)).Scan(&n))
	return n
}

func TestSensorLifecycleAndDeviceKey(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)

	resp := apitest.Do(t, h, &env.AdminA, "POST", "/sensors",
		`{"device_id":"fridge-1","name":"Fridge 1","location":"Kitchen","alert_high":8}`)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	created := resp.JSON(t)
	id := created["id"].(string)
	key := created["device_key"].(string)
	assert.Equal(t, "/sensors/"+id, resp.Header.Get("Location"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	assert.Equal(t, env.ClientA, created["client_id"], "a client admin's sensor belongs to their client")
	assert.Regexp(t, keyPattern, key)
	var slug string
	require.NoError(t, env.DB.QueryRow(context.Background(), `SELECT slug FROM clients WHERE id = $1`, env.ClientA).Scan(&slug))
	assert.Equal(t, map[string]any{"username": slug + "/fridge-1", "client_id": slug + "/fridge-1", "password": key,
		"topic": "tempwatch/" + slug + "/sensors/fridge-1/readings"}, created["mqtt"], "MQTT credentials come with the key")
	assert.Equal(t, "C", created["unit"])
	assert.Equal(t, -100.0, created["min_value"])
	assert.Equal(t, 200.0, created["max_value"])
	assert.Nil(t, created["alert_low"])
	assert.Equal(t, 8.0, created["alert_high"])
	assert.Equal(t, 1, sensorsWithHash(t, env, key), "the key is stored as tempwatch.HashDeviceKey")
	var raw int
	require.NoError(t, env.DB.QueryRow(context.Background(),
		`SELECT count(*) FROM sensors WHERE position($1::bytea in device_key_hash) > 0`, []byte(key)).Scan(&raw))
	assert.Zero(t, raw, "the plain key is never stored")

	resp = apitest.Do(t, h, &env.ViewerA, "GET", "/sensors/"+id, "")
	require.Equal(t, http.StatusOK, resp.Status)
	got := resp.JSON(t)
	assert.NotContains(t, got, "device_key", "the key is shown only at creation and rotation")
	assert.NotContains(t, got, "mqtt")
	assert.Equal(t, "Kitchen", got["location"])
	assert.NotContains(t, string(apitest.Do(t, h, &env.AdminA, "GET", "/sensors", "").Body), key)

	resp = apitest.Do(t, h, &env.AdminA, "PATCH", "/sensors/"+id, `{"name":"Fridge One","alert_low":2}`)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	got = resp.JSON(t)
	assert.Equal(t, "Fridge One", got["name"])
	assert.Equal(t, 2.0, got["alert_low"])
	assert.Equal(t, 8.0, got["alert_high"], "PATCH leaves unset fields alone")
	assert.Equal(t, "fridge-1", got["device_id"])

	resp = apitest.Do(t, h, &env.AdminA, "PATCH", "/sensors/"+id, `{"alert_high":null}`)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	assert.Nil(t, resp.JSON(t)["alert_high"], "null clears a threshold")

	resp = apitest.Do(t, h, &env.AdminA, "PATCH", "/sensors/"+id, `{"client_id":"`+env.ClientB+`"}`)
	assert.Equal(t, http.StatusBadRequest, resp.Status, "a sensor cannot move to another client")
	assert.Contains(t, resp.JSON(t)["errors"], "client_id")

	resp = apitest.Do(t, h, &env.AdminA, "POST", "/sensors/"+id+"/rotate-key", "")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	newKey := resp.JSON(t)["device_key"].(string)
	assert.Regexp(t, keyPattern, newKey)
	assert.Equal(t, newKey, resp.JSON(t)["mqtt"].(map[string]any)["password"], "rotation renews the MQTT password")
	assert.NotEqual(t, key, newKey)
	assert.Equal(t, id, resp.JSON(t)["id"])
	assert.Zero(t, sensorsWithHash(t, env, key), "rotation invalidates the old key")
	assert.Equal(t, 1, sensorsWithHash(t, env, newKey))

	resp = apitest.Do(t, h, &env.AdminA, "DELETE", "/sensors/"+id, "")
	assert.Equal(t, http.StatusNoContent, resp.Status)
	assert.Empty(t, resp.Body)
	assert.Equal(t, http.StatusNotFound, apitest.Do(t, h, &env.AdminA, "GET", "/sensors/"+id, "").Status)
	assert.Equal(t, http.StatusNotFound, apitest.Do(t, h, &env.AdminA, "DELETE", "/sensors/"+id, "").Status)
	assert.Equal(t, http.StatusNotFound, apitest.Do(t, h, &env.AdminA, "POST", "/sensors/"+id+"/rotate-key", "").Status)
}

func TestSensorDeviceIDUniquePerClient(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	require.Equal(t, http.StatusCreated, apitest.Do(t, h, &env.AdminA, "POST", "/sensors", `{"device_id":"d1","name":"a"}`).Status)

	resp := apitest.Do(t, h, &env.AdminA, "POST", "/sensors", `{"device_id":"d1","name":"b"}`)
	assert.Equal(t, http.StatusConflict, resp.Status)
	assert.Equal(t, tempwatch.ECONFLICT, resp.JSON(t)["code"])
	assert.Contains(t, resp.JSON(t)["detail"], "device_id")

	assert.Equal(t, http.StatusCreated, apitest.Do(t, h, &env.AdminB, "POST", "/sensors", `{"device_id":"d1","name":"b"}`).Status,
		"another client may use the same device id")

	second := apitest.Do(t, h, &env.AdminA, "POST", "/sensors", `{"device_id":"d2","name":"c"}`).JSON(t)
	resp = apitest.Do(t, h, &env.AdminA, "PATCH", "/sensors/"+second["id"].(string), `{"device_id":"d1"}`)
	assert.Equal(t, http.StatusConflict, resp.Status, "renaming onto a taken device id")
}

func TestSensorCreateByRole(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	tests := []struct {
		name       string
		p          *tempwatch.Principal
		body       string
		wantStatus int
		wantClient string
	}{
		{"admin names the client", &env.Admin, `{"client_id":"` + env.ClientB + `","device_id":"a1","name":"x"}`, 201, env.ClientB},
		{"admin must name a client", &env.Admin, `{"device_id":"a2","name":"x"}`, 400, ""},
		{"admin with unknown client", &env.Admin, `{"client_id":"00000000-0000-4000-8000-000000000000","device_id":"a3","name":"x"}`, 404, ""},
		{"client admin, own client by default", &env.AdminA, `{"device_id":"b1","name":"x"}`, 201, env.ClientA},
		{"client admin, own client named", &env.AdminA, `{"client_id":"` + env.ClientA + `","device_id":"b2","name":"x"}`, 201, env.ClientA},
		{"client admin, other client named", &env.AdminB, `{"client_id":"` + env.ClientA + `","device_id":"b3","name":"x"}`, 404, ""},
		{"viewer", &env.ViewerA, `{"device_id":"c1","name":"x"}`, 403, ""},
		{"viewer naming other client", &env.ViewerB, `{"client_id":"` + env.ClientA + `","device_id":"c2","name":"x"}`, 404, ""},
		{"no principal", nil, `{"device_id":"c3","name":"x"}`, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := apitest.Do(t, h, tt.p, "POST", "/sensors", tt.body)
			require.Equal(t, tt.wantStatus, resp.Status, string(resp.Body))
			if tt.wantClient != "" {
				assert.Equal(t, tt.wantClient, resp.JSON(t)["client_id"])
			}
		})
	}
}

func TestSensorValidation(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	s := apitest.Do(t, h, &env.AdminA, "POST", "/sensors", `{"device_id":"v1","name":"v","min_value":-20,"max_value":50}`).JSON(t)
	id := s["id"].(string)
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantFields []string
	}{
		{"missing fields", "POST", "/sensors", `{}`, 400, []string{"device_id", "name"}},
		{"bad device id and unit", "POST", "/sensors", `{"device_id":"has space","name":"x","unit":"K"}`, 400, []string{"device_id", "unit"}},
		{"range reversed", "POST", "/sensors", `{"device_id":"x","name":"x","min_value":10,"max_value":5}`, 400, []string{"max_value"}},
		{"thresholds reversed", "POST", "/sensors", `{"device_id":"x","name":"x","alert_low":10,"alert_high":5}`, 400, []string{"alert_high"}},
		{"absurd range", "POST", "/sensors", `{"device_id":"x","name":"x","max_value":1e300}`, 400, []string{"max_value"}},
		{"name too long", "POST", "/sensors", `{"device_id":"x","name":"` + strings.Repeat("n", 201) + `"}`, 400, []string{"name"}},
		{"unknown field", "POST", "/sensors", `{"device_id":"x","name":"x","device_key_hash":"AA=="}`, 400, []string{"device_key_hash"}},
		{"wrong type", "POST", "/sensors", `{"device_id":"x","name":"x","min_value":"cold"}`, 400, []string{"min_value"}},
		{"patch min above stored max", "PATCH", "/sensors/" + id, `{"min_value":60}`, 400, []string{"max_value"}},
		{"patch empty name", "PATCH", "/sensors/" + id, `{"name":""}`, 400, []string{"name"}},
		{"patch threshold not a number", "PATCH", "/sensors/" + id, `{"alert_low":"x"}`, 400, []string{"alert_low"}},
		{"negative delay", "POST", "/sensors", `{"device_id":"x","name":"x","alarm_delay_seconds":-1}`, 400, []string{"alarm_delay_seconds"}},
		{"fractional delay", "POST", "/sensors", `{"device_id":"x","name":"x","alarm_delay_seconds":1.5}`, 400, []string{"alarm_delay_seconds"}},
		{"huge delay", "POST", "/sensors", `{"device_id":"x","name":"x","alarm_delay_seconds":1e30}`, 400, []string{"alarm_delay_seconds"}},
		{"hysteresis over 100", "POST", "/sensors", `{"device_id":"x","name":"x","alarm_hysteresis":101}`, 400, []string{"alarm_hysteresis"}},
		{"hysteresis not a number", "POST", "/sensors", `{"device_id":"x","name":"x","alarm_hysteresis":"wide"}`, 400, []string{"alarm_hysteresis"}},
		{"silence too short", "POST", "/sensors", `{"device_id":"x","name":"x","silence_after_seconds":59}`, 400, []string{"silence_after_seconds"}},
		{"silence zero", "POST", "/sensors", `{"device_id":"x","name":"x","silence_after_seconds":0}`, 400, []string{"silence_after_seconds"}},
		{"last seen is read-only", "POST", "/sensors", `{"device_id":"x","name":"x","last_received_at":"2026-01-01T00:00:00Z"}`, 400, []string{"last_received_at"}},
		{"status is read-only", "PATCH", "/sensors/" + id, `{"status":"online"}`, 400, []string{"status"}},
		{"patch delay over a week", "PATCH", "/sensors/" + id, `{"alarm_delay_seconds":604801}`, 400, []string{"alarm_delay_seconds"}},
		{"patch negative hysteresis", "PATCH", "/sensors/" + id, `{"alarm_hysteresis":-0.5}`, 400, []string{"alarm_hysteresis"}},
		{"patch silence over 30 days", "PATCH", "/sensors/" + id, `{"silence_after_seconds":2592001}`, 400, []string{"silence_after_seconds"}},
		{"bad status filter", "GET", "/sensors?status=broken", ``, 400, []string{"status"}},
		{"malformed id", "GET", "/sensors/42", ``, 404, nil},
		{"limit too large", "GET", "/sensors?limit=501", ``, 400, []string{"limit"}},
		{"bad client filter", "GET", "/sensors?client_id=nope", ``, 400, []string{"client_id"}},
		{"bad cursor", "GET", "/sensors?cursor=zzz", ``, 400, []string{"cursor"}},
		{"unknown route", "GET", "/sensors/" + id + "/nothing", ``, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := apitest.Do(t, h, &env.AdminA, tt.method, tt.path, tt.body)
			require.Equal(t, tt.wantStatus, resp.Status, "%s %s = %s", tt.method, tt.path, resp.Body)
			assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			fields, _ := resp.JSON(t)["errors"].(map[string]any)
			for _, f := range tt.wantFields {
				assert.Contains(t, fields, f, "problem must name field %q: %s", f, resp.Body)
			}
		})
	}
	got := apitest.Do(t, h, &env.AdminA, "GET", "/sensors/"+id, "").JSON(t)
	assert.Equal(t, -20.0, got["min_value"], "a refused PATCH changes nothing")
}

func TestSensorListTenantScopeAndPaging(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	const perClient = 7
	for i := range perClient {
		for _, p := range []*tempwatch.Principal{&env.AdminA, &env.AdminB} {
			name := "room"
			if i%2 == 0 {
				name = "freezer"
			}
			resp := apitest.Do(t, h, p, "POST", "/sensors", `{"device_id":"d`+string(rune('a'+i))+`","name":"`+name+`"}`)
			require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
		}
	}
	list := func(p *tempwatch.Principal, query string) ([]*tempwatch.Sensor, int) {
		var all []*tempwatch.Sensor
		cursor := ""
		for pages := 0; pages < 20; pages++ {
			path := "/sensors?limit=3" + query
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			resp := apitest.Do(t, h, p, "GET", path, "")
			if resp.Status != http.StatusOK {
				return nil, resp.Status
			}
			var page httpapi.Page[*tempwatch.Sensor]
			resp.Decode(t, &page)
			all = append(all, page.Items...)
			if !page.HasMore {
				return all, resp.Status
			}
			cursor = page.NextCursor
		}
		t.Fatal("paging does not end")
		return nil, 0
	}
	clientsOf := func(ss []*tempwatch.Sensor) map[string]int {
		m := map[string]int{}
		for _, s := range ss {
			m[s.ClientID]++
		}
		return m
	}

	all, status := list(&env.Admin, "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, map[string]int{env.ClientA: perClient, env.ClientB: perClient}, clientsOf(all))
	seen := map[string]bool{}
	for i, s := range all {
		assert.False(t, seen[s.ID], "sensor %s listed twice", s.ID)
		seen[s.ID] = true
		if i > 0 {
			prev := all[i-1]
			assert.True(t, prev.CreatedAt.After(s.CreatedAt) || (prev.CreatedAt.Equal(s.CreatedAt) && prev.ID > s.ID),
				"not newest first at %d", i)
		}
	}

	tests := []struct {
		name       string
		p          *tempwatch.Principal
		query      string
		wantStatus int
		want       map[string]int
	}{
		{"admin filters by client", &env.Admin, "&client_id=" + env.ClientA, 200, map[string]int{env.ClientA: perClient}},
		{"admin filters by name", &env.Admin, "&name=FREEZ", 200, map[string]int{env.ClientA: 4, env.ClientB: 4}},
		{"client admin sees own client", &env.AdminB, "", 200, map[string]int{env.ClientB: perClient}},
		{"viewer sees own client", &env.ViewerA, "&name=room", 200, map[string]int{env.ClientA: 3}},
		{"viewer names own client", &env.ViewerA, "&client_id=" + env.ClientA, 200, map[string]int{env.ClientA: perClient}},
		{"other tenant's client id", &env.ViewerA, "&client_id=" + env.ClientB, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, status := list(tt.p, tt.query)
			require.Equal(t, tt.wantStatus, status)
			if tt.want != nil {
				assert.Equal(t, tt.want, clientsOf(got))
			}
		})
	}
}

// downDevices is PostgreSQL unreachable: whatever a device store over it
// finds comes from Redis.
type downDevices struct{}

func (downDevices) DevicesByRef(context.Context, []tempwatch.DeviceRef) (map[tempwatch.DeviceRef]tempwatch.Device, error) {
	return nil, tempwatch.Errorf(tempwatch.EUNAVAILABLE, "down")
}

func (downDevices) DeviceByKeyHash(context.Context, []byte) (tempwatch.Device, error) {
	return tempwatch.Device{}, tempwatch.Errorf(tempwatch.EUNAVAILABLE, "down")
}

func (downDevices) ClientIDsBySlug(context.Context, []string) (map[string]string, error) {
	return nil, tempwatch.Errorf(tempwatch.EUNAVAILABLE, "down")
}

// TestRotationAndDeleteDropIngestDeviceLookups warms ingest's device cache
// (Redis level) with the key and the topic, changes the sensor through the
// API, and expects a fresh ingest process to refuse what it no longer is at
// once: the old key after a rotation, the old device id after a rename, the
// key after a delete.
func TestRotationAndDeleteDropIngestDeviceLookups(t *testing.T) {
	t.Parallel()
	env := apitest.MustEnv(t)
	rc := redistest.MustAdapter(t)
	h := sensors.NewHandler(postgres.NewSensorStore(env.DB), redis.NewSensorCaches(rc, postgres.NewReadingStore(env.DB)), apitest.Discard())
	devices := redis.NewDeviceStore(rc, postgres.NewDeviceStore(env.DB))
	freshIngest := func() *ingest.DeviceCache { return ingest.NewDeviceCache(devices, ingest.DeviceCacheOptions{}) }
	// onlyRedis is a fresh ingest process while PostgreSQL is down.
	onlyRedis := ingest.NewDeviceCache(redis.NewDeviceStore(rc, downDevices{}), ingest.DeviceCacheOptions{})
	ctx := context.Background()

	created := apitest.Do(t, h, &env.AdminA, "POST", "/sensors", `{"device_id":"dock-3","name":"Dock"}`).JSON(t)
	id, oldKey := created["id"].(string), created["device_key"].(string)
	user := created["mqtt"].(map[string]any)["username"].(string)
	slug, _, _ := strings.Cut(user, "/")
	oldRef := tempwatch.DeviceRef{ClientSlug: slug, DeviceID: "dock-3"}
	_, err := freshIngest().ByKey(ctx, oldKey)
	require.NoError(t, err, "ingest knows the key and caches it in Redis")
	_, err = freshIngest().Resolve(ctx, []tempwatch.DeviceRef{oldRef})
	require.NoError(t, err)
	_, err = onlyRedis.ByKey(ctx, oldKey)
	require.NoError(t, err, "precondition: the key's lookup is in Redis")

	resp := apitest.Do(t, h, &env.AdminA, "POST", "/sensors/"+id+"/rotate-key", "")
	require.Equal(t, http.StatusOK, resp.Status)
	newKey := resp.JSON(t)["device_key"].(string)
	_, err = freshIngest().ByKey(ctx, oldKey)
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "the old key must stop working: %v", err)
	_, err = freshIngest().ByKey(ctx, newKey)
	require.NoError(t, err)

	got, err := freshIngest().Resolve(ctx, []tempwatch.DeviceRef{oldRef})
	require.NoError(t, err)
	require.Contains(t, got, oldRef, "precondition: the topic's lookup is in Redis again")
	require.Equal(t, http.StatusOK, apitest.Do(t, h, &env.AdminA, "PATCH", "/sensors/"+id, `{"device_id":"dock-4"}`).Status)
	got, err = freshIngest().Resolve(ctx, []tempwatch.DeviceRef{oldRef, {ClientSlug: slug, DeviceID: "dock-4"}})
	require.NoError(t, err)
	assert.NotContains(t, got, oldRef, "the old device id must stop resolving")
	assert.Equal(t, id, got[tempwatch.DeviceRef{ClientSlug: slug, DeviceID: "dock-4"}].SensorID)

	require.Equal(t, http.StatusNoContent, apitest.Do(t, h, &env.AdminA, "DELETE", "/sensors/"+id, "").Status)
	_, err = freshIngest().ByKey(ctx, newKey)
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "a deleted sensor's key must stop working: %v", err)
}

func TestSensorsShowTheirLatestReading(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	ctx := context.Background()
	withData := apitest.Do(t, h, &env.AdminA, "POST", "/sensors", `{"device_id":"with","name":"with"}`).JSON(t)["id"].(string)
	empty := apitest.Do(t, h, &env.AdminA, "POST", "/sensors", `{"device_id":"empty","name":"empty"}`).JSON(t)["id"].(string)
	// The newest measured_at wins, not the newest insert: the second row is a
	// late reading from a device that was offline.
	_, err := env.DB.Exec(ctx, `INSERT INTO readings (sensor_id, value, measured_at) VALUES
		($1, 4.25, now() - interval '5 minutes'), ($1, 9, now() - interval '3 hours')`, withData)
	require.NoError(t, err)

	got := apitest.Do(t, h, &env.ViewerA, "GET", "/sensors/"+withData, "").JSON(t)
	latest, ok := got["latest_reading"].(map[string]any)
	require.True(t, ok, "latest_reading: %v", got["latest_reading"])
	assert.Equal(t, 4.25, latest["value"])
	assert.Equal(t, withData, latest["sensor_id"])
	got = apitest.Do(t, h, &env.ViewerA, "GET", "/sensors/"+empty, "").JSON(t)
	assert.Contains(t, got, "latest_reading")
	assert.Nil(t, got["latest_reading"])

	var page httpapi.Page[sensors.WithLatest]
	apitest.Do(t, h, &env.ViewerA, "GET", "/sensors", "").Decode(t, &page)
	require.Len(t, page.Items, 2)
	byID := map[string]*tempwatch.Reading{}
	for _, s := range page.Items {
		byID[s.ID] = s.LatestReading
	}
	require.NotNil(t, byID[withData])
	assert.Equal(t, 4.25, byID[withData].Value)
	assert.Nil(t, byID[empty])
}

// The alarm settings are created with their defaults or the values given,
// changed by PATCH alone, and shown with the last-seen times on every read.
func TestSensorAlarmSettings(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	resp := apitest.Do(t, h, &env.AdminA, "POST", "/sensors", `{"device_id":"defaults","name":"d"}`)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	got := resp.JSON(t)
	assert.Equal(t, 0.0, got["alarm_delay_seconds"])
	assert.Equal(t, 0.0, got["alarm_hysteresis"])
	assert.Equal(t, 900.0, got["silence_after_seconds"], "silent after 15 minutes by default")
	assert.Nil(t, got["last_measured_at"])
	assert.Nil(t, got["last_received_at"])
	assert.Equal(t, tempwatch.SensorUnknown, got["status"], "a sensor that never sent is unknown")

	resp = apitest.Do(t, h, &env.AdminA, "POST", "/sensors",
		`{"device_id":"set","name":"s","alarm_delay_seconds":600,"alarm_hysteresis":0.5,"silence_after_seconds":3600}`)
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	id := resp.JSON(t)["id"].(string)
	var delay, silence float64
	require.NoError(t, env.DB.QueryRow(context.Background(), `SELECT extract(epoch FROM alarm_delay), extract(epoch FROM silence_after)
		FROM sensors WHERE id = $1`, id).Scan(&delay, &silence))
	assert.Equal(t, 600.0, delay, "alarm_delay is the interval of the seconds given")
	assert.Equal(t, 3600.0, silence)

	resp = apitest.Do(t, h, &env.AdminA, "PATCH", "/sensors/"+id, `{"alarm_hysteresis":1.25}`)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	got = resp.JSON(t)
	assert.Equal(t, 1.25, got["alarm_hysteresis"])
	assert.Equal(t, 600.0, got["alarm_delay_seconds"], "PATCH leaves unset settings alone")
	assert.Equal(t, 3600.0, got["silence_after_seconds"])

	resp = apitest.Do(t, h, &env.Admin, "PATCH", "/sensors/"+id, `{"alarm_delay_seconds":0,"silence_after_seconds":60}`)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	got = resp.JSON(t)
	assert.Equal(t, 0.0, got["alarm_delay_seconds"])
	assert.Equal(t, 60.0, got["silence_after_seconds"])

	resp = apitest.Do(t, h, &env.ViewerA, "PATCH", "/sensors/"+id, `{"alarm_delay_seconds":60}`)
	assert.Equal(t, http.StatusForbidden, resp.Status, "a viewer may not change the alarm settings")
	resp = apitest.Do(t, h, &env.AdminB, "PATCH", "/sensors/"+id, `{"alarm_delay_seconds":60}`)
	assert.Equal(t, http.StatusNotFound, resp.Status, "another client's admin does not see the sensor")

	measured := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	_, err := env.DB.Exec(context.Background(), `UPDATE sensors SET last_measured_at = $2, last_received_at = now() WHERE id = $1`, id, measured)
	require.NoError(t, err)
	got = apitest.Do(t, h, &env.ViewerA, "GET", "/sensors/"+id, "").JSON(t)
	assert.Equal(t, measured.Format(time.RFC3339), got["last_measured_at"])
	assert.NotNil(t, got["last_received_at"])
	assert.Equal(t, 0.0, got["alarm_delay_seconds"], "a refused PATCH changes nothing")
}

// Each sensor's status is computed where it is read, on GET and in lists,
// and the list filters on it.
func TestSensorStatus(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	ctx := context.Background()
	sensor := func(dev string) string {
		resp := apitest.Do(t, h, &env.AdminA, "POST", "/sensors", `{"device_id":"`+dev+`","name":"`+dev+`"}`)
		require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
		return resp.JSON(t)["id"].(string)
	}
	received := func(id, ago string) {
		_, err := env.DB.Exec(ctx, `UPDATE sensors SET last_measured_at = now() - $2::interval,
			last_received_at = now() - $2::interval WHERE id = $1`, id, ago)
		require.NoError(t, err)
	}
	alarm := func(id, kind, state string) {
		pgtest.MustAlarm(t, env.DB, id, kind, state, time.Now().Add(-time.Hour))
	}

	unknown := sensor("unknown")
	online := sensor("online")
	received(online, "1 minute")
	late := sensor("late")
	received(late, "16 minutes")
	silenced := sensor("silenced")
	received(silenced, "1 minute") // the sweep's alarm stands until the next batch clears it
	alarm(silenced, tempwatch.AlarmSilent, tempwatch.AlarmOpen)
	high := sensor("high")
	received(high, "1 minute")
	alarm(high, tempwatch.AlarmHigh, tempwatch.AlarmOpen)
	silentHigh := sensor("silent-and-high")
	received(silentHigh, "1 hour")
	alarm(silentHigh, tempwatch.AlarmLow, tempwatch.AlarmOpen)
	pending := sensor("pending")
	received(pending, "1 minute")
	alarm(pending, tempwatch.AlarmHigh, tempwatch.AlarmPending)
	cleared := sensor("cleared")
	received(cleared, "1 minute")
	alarm(cleared, tempwatch.AlarmHigh, tempwatch.AlarmCleared)

	want := map[string]string{
		unknown: tempwatch.SensorUnknown, online: tempwatch.SensorOnline, late: tempwatch.SensorSilent,
		silenced: tempwatch.SensorSilent, high: tempwatch.SensorInAlarm, silentHigh: tempwatch.SensorInAlarm,
		pending: tempwatch.SensorOnline, cleared: tempwatch.SensorOnline,
	}
	var page struct {
		Items []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"items"`
	}
	apitest.Do(t, h, &env.ViewerA, "GET", "/sensors?limit=500", "").Decode(t, &page)
	require.Len(t, page.Items, len(want))
	for _, s := range page.Items {
		assert.Equal(t, want[s.ID], s.Status, "listed status of sensor %s", s.ID)
		assert.Equal(t, want[s.ID], apitest.Do(t, h, &env.ViewerA, "GET", "/sensors/"+s.ID, "").JSON(t)["status"],
			"GET status of sensor %s", s.ID)
	}
	for _, status := range tempwatch.SensorStatuses {
		apitest.Do(t, h, &env.ViewerA, "GET", "/sensors?status="+status, "").Decode(t, &page)
		var ids []string
		for _, s := range page.Items {
			assert.Equal(t, status, s.Status, "?status=%s", status)
			ids = append(ids, s.ID)
		}
		var wantIDs []string
		for id, st := range want {
			if st == status {
				wantIDs = append(wantIDs, id)
			}
		}
		assert.ElementsMatch(t, wantIDs, ids, "?status=%s lists exactly the sensors of that status", status)
	}
	apitest.Do(t, h, &env.AdminB, "GET", "/sensors?status=in_alarm", "").Decode(t, &page)
	assert.Empty(t, page.Items, "the status filter keeps to the caller's client")

	resp := apitest.Do(t, h, &env.AdminA, "PATCH", "/sensors/"+high, `{"name":"renamed"}`)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	assert.Equal(t, tempwatch.SensorInAlarm, resp.JSON(t)["status"], "a write's answer carries the status too")
}
