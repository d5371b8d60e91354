package emqx_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/deviceauth/deviceauthtest"
	"github.com/tempwatch/tempwatch/shared/emqx"
	"github.com/tempwatch/tempwatch/shared/openapi/openapitest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

const (
	secret     = "broker-secret-0123456789abcdef-0123"
	bridgePass = "bridge-secret-0123456789abcdef"
	keyA       = "twk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	keyB       = "twk_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	ownTopic   = "tempwatch/acme/sensors/cr-1/readings"
)

var (
	devA = tempwatch.Device{SensorID: "5c0ffee0-0000-4000-8000-00000000000a", ClientID: "c-acme", ClientSlug: "acme", DeviceID: "cr-1"}
	devB = tempwatch.Device{SensorID: "5c0ffee0-0000-4000-8000-00000000000b", ClientID: "c-bolt", ClientSlug: "bolt", DeviceID: "truck.7"}
	now  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type fixture struct {
	h    http.Handler
	keys *deviceauthtest.Keys
	logs *syncBuffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	keys := &deviceauthtest.Keys{Keys: map[string]tempwatch.Device{keyA: devA, keyB: devB}}
	auth, err := deviceauth.New(keys, deviceauth.Bridge{Password: bridgePass})
	require.NoError(t, err)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := emqx.NewHandler(auth, emqx.Config{Secret: secret, DeviceSession: time.Hour}, log, func() time.Time { return now })
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, s := range []string{secret, bridgePass, keyA, keyB} {
			assert.NotContains(t, logs.String(), s, "a secret reached the log")
		}
	})
	return &fixture{h: openapitest.Handler(t, h), keys: keys, logs: logs}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// post sends body to path with the Authorization header auth ("" for none).
func (fx *fixture) post(t *testing.T, path, auth, contentType, body string) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	fx.h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return response{status: rec.Code, header: rec.Header(), body: b}
}

// broker sends body as the broker does.
func (fx *fixture) broker(t *testing.T, path, body string) response {
	t.Helper()
	return fx.post(t, path, "Bearer "+secret, "application/json", body)
}

func authnBody(clientID, username, password string) string {
	b, _ := json.Marshal(map[string]string{"clientid": clientID, "username": username, "password": password, "peerhost": "192.0.2.7"})
	return string(b)
}

func authzBody(username, clientID, action, topic string) string {
	b, _ := json.Marshal(map[string]string{"username": username, "clientid": clientID, "action": action, "topic": topic, "qos": "1", "retain": "false"})
	return string(b)
}

func TestOnlyTheBrokerMayCall(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name, auth string
	}{
		{"no credential", ""},
		{"wrong secret", "Bearer " + strings.Repeat("x", len(secret))},
		{"secret with a suffix", "Bearer " + secret + "x"},
		{"a prefix of the secret", "Bearer " + secret[:len(secret)-1]},
		{"empty bearer", "Bearer "},
		{"secret without the scheme", secret},
		{"secret as basic credentials", "Basic " + secret},
		{"a user's access token", "Bearer eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1In0.c2ln"},
		{"a device key", "Bearer " + keyA},
	}
	for _, path := range []string{emqx.AuthnPath, emqx.AuthzPath} {
		for _, tt := range tests {
			t.Run(path+" "+tt.name, func(t *testing.T) {
				body := authnBody("acme/cr-1", "acme/cr-1", keyA)
				if path == emqx.AuthzPath {
					body = authzBody("acme/cr-1", "acme/cr-1", "publish", ownTopic)
				}
				resp := fx.post(t, path, tt.auth, "application/json", body)
				require.Equal(t, http.StatusUnauthorized, resp.status, "%s", resp.body)
				assert.Equal(t, "application/problem+json", resp.header.Get("Content-Type"))
				assert.Contains(t, resp.header.Get("WWW-Authenticate"), "Bearer")
				assert.Equal(t, "unauthorized", resp.json(t)["code"])
				assert.NotContains(t, string(resp.body), secret)
			})
		}
	}
}

func TestNewHandlerRefusesAShortSecret(t *testing.T) {
	auth, err := deviceauth.New(&deviceauthtest.Keys{}, deviceauth.Bridge{Password: bridgePass})
	require.NoError(t, err)
	_, err = emqx.NewHandler(auth, emqx.Config{Secret: "short"}, slog.New(slog.DiscardHandler), nil)
	assert.Error(t, err)
}

func TestLoadConfig(t *testing.T) {
	r := config.NewReader(config.MapEnv(map[string]string{
		"MQTT_BROKER_SECRET":   secret,
		"MQTT_BRIDGE_PASSWORD": bridgePass,
	}))
	cfg := emqx.LoadConfig(r)
	require.NoError(t, r.Err())
	assert.Equal(t, emqx.Config{Secret: secret, DeviceSession: time.Hour, Bridge: deviceauth.Bridge{
		Username: deviceauth.DefaultBridgeUsername, Password: bridgePass, ClientIDPrefix: deviceauth.DefaultBridgeClientIDPrefix}}, cfg)

	r = config.NewReader(config.MapEnv(map[string]string{
		"MQTT_BROKER_SECRET":      "too-short",
		"MQTT_DEVICE_SESSION_MAX": "forever",
	}))
	emqx.LoadConfig(r)
	err := r.Err()
	require.Error(t, err)
	for _, name := range []string{"MQTT_BROKER_SECRET", "MQTT_BRIDGE_PASSWORD", "MQTT_DEVICE_SESSION_MAX"} {
		assert.Contains(t, err.Error(), name)
	}
	assert.NotContains(t, err.Error(), "too-short", "the secret must not be echoed")
}

func TestAuthn(t *testing.T) {
	fx := newFixture(t)
	device := func(d tempwatch.Device) []emqx.ACLRule {
		return []emqx.ACLRule{
			{Permission: "allow", Action: "publish", Topic: "eq " + d.Ref().Topic()},
			{Permission: "deny", Action: "all", Topic: "#"},
		}
	}
	expire := now.Add(time.Hour).Unix()
	tests := []struct {
		name                         string
		clientID, username, password string
		want                         emqx.AuthnResponse
	}{
		{"device", "acme/cr-1", "acme/cr-1", keyA, emqx.AuthnResponse{Result: "allow", ExpireAt: expire, ACL: device(devA)}},
		{"device with a dot", "bolt/truck.7", "bolt/truck.7", keyB, emqx.AuthnResponse{Result: "allow", ExpireAt: expire, ACL: device(devB)}},
		{"bridge", "tempwatch-bridge-1", "tempwatch-bridge", bridgePass,
			emqx.AuthnResponse{Result: "allow", ACL: []emqx.ACLRule{{Permission: "deny", Action: "publish", Topic: "#"}}}},
		{"anonymous", "whoever", "", "", emqx.AuthnResponse{Result: "deny"}},
		{"no password", "acme/cr-1", "acme/cr-1", "", emqx.AuthnResponse{Result: "deny"}},
		{"wrong key", "acme/cr-1", "acme/cr-1", "twk_wrong", emqx.AuthnResponse{Result: "deny"}},
		{"another device's key", "acme/cr-1", "acme/cr-1", keyB, emqx.AuthnResponse{Result: "deny"}},
		{"another tenant's device name with this key", "bolt/truck.7", "bolt/truck.7", keyA, emqx.AuthnResponse{Result: "deny"}},
		{"client id not the username", "sensor-1", "acme/cr-1", keyA, emqx.AuthnResponse{Result: "deny"}},
		{"device taking the bridge's client id", "tempwatch-bridge-1", "acme/cr-1", keyA, emqx.AuthnResponse{Result: "deny"}},
		{"bridge username, wrong password", "tempwatch-bridge-1", "tempwatch-bridge", bridgePass + "x", emqx.AuthnResponse{Result: "deny"}},
		{"bridge username, a device key", "tempwatch-bridge-1", "tempwatch-bridge", keyA, emqx.AuthnResponse{Result: "deny"}},
		{"bridge credential, foreign client id", "intruder", "tempwatch-bridge", bridgePass, emqx.AuthnResponse{Result: "deny"}},
		{"EMQX's rendering of no username", "x", "undefined", "undefined", emqx.AuthnResponse{Result: "deny"}},
		{"username with a wildcard", "acme/+", "acme/+", keyA, emqx.AuthnResponse{Result: "deny"}},
		{"the key as username and client id", keyA, keyA, keyA, emqx.AuthnResponse{Result: "deny"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := fx.broker(t, emqx.AuthnPath, authnBody(tt.clientID, tt.username, tt.password))
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			assert.Equal(t, "application/json", resp.header.Get("Content-Type"))
			var got emqx.AuthnResponse
			require.NoError(t, json.Unmarshal(resp.body, &got))
			assert.Equal(t, tt.want, got)
			assert.Equal(t, false, resp.json(t)["is_superuser"], "is_superuser is always sent, and always false")
		})
	}
	assert.Contains(t, fx.logs.String(), "mqtt connect refused")
	assert.Contains(t, fx.logs.String(), "192.0.2.7", "refusals name the peer")
}

func TestAuthnStoreOutageDenies(t *testing.T) {
	fx := newFixture(t)
	fx.keys.Down = true
	resp := fx.broker(t, emqx.AuthnPath, authnBody("acme/cr-1", "acme/cr-1", keyA))
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, map[string]any{"result": "deny", "is_superuser": false}, resp.json(t))
	assert.Contains(t, fx.logs.String(), "level=ERROR")
	assert.Contains(t, fx.logs.String(), "key store failed")

	// The bridge needs no lookup: it still connects.
	resp = fx.broker(t, emqx.AuthnPath, authnBody("tempwatch-bridge", "tempwatch-bridge", bridgePass))
	assert.Equal(t, "allow", resp.json(t)["result"])
}

func TestAuthnWithoutSessionBoundHasNoExpiry(t *testing.T) {
	auth, err := deviceauth.New(&deviceauthtest.Keys{Keys: map[string]tempwatch.Device{keyA: devA}}, deviceauth.Bridge{Password: bridgePass})
	require.NoError(t, err)
	h, err := emqx.NewHandler(auth, emqx.Config{Secret: secret}, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	fx := &fixture{h: openapitest.Handler(t, h)}
	resp := fx.broker(t, emqx.AuthnPath, authnBody("acme/cr-1", "acme/cr-1", keyA))
	m := resp.json(t)
	assert.Equal(t, "allow", m["result"])
	assert.NotContains(t, m, "expire_at")
}

// TestMalformedBodiesAre400 checks that nothing a broker (or a
// misconfiguration) sends makes the handler fail with a 5xx.
func TestMalformedBodiesAre400(t *testing.T) {
	fx := newFixture(t)
	huge := `{"clientid":"a","username":"a","password":"` + strings.Repeat("p", 1<<20+10) + `"}`
	tests := []struct {
		name, path, contentType, body string
		field                         string // named in errors, when one is
	}{
		{"authn: not JSON", emqx.AuthnPath, "application/json", "clientid=a&username=b", ""},
		{"authn: empty", emqx.AuthnPath, "application/json", "", ""},
		{"authn: an array", emqx.AuthnPath, "application/json", `[{"clientid":"a"}]`, ""},
		{"authn: truncated", emqx.AuthnPath, "application/json", `{"clientid":"a","username":`, ""},
		{"authn: two values", emqx.AuthnPath, "application/json", authnBody("a", "a", "a") + authnBody("a", "a", "a"), ""},
		{"authn: username a number", emqx.AuthnPath, "application/json", `{"clientid":"a","username":5,"password":"p"}`, "username"},
		{"authn: no username", emqx.AuthnPath, "application/json", `{"clientid":"a","password":"p"}`, "username"},
		{"authn: no password", emqx.AuthnPath, "application/json", `{"clientid":"a","username":"a"}`, "password"},
		{"authn: no client id", emqx.AuthnPath, "application/json", `{"username":"a","password":"p"}`, "clientid"},
		{"authn: null username", emqx.AuthnPath, "application/json", `{"clientid":"a","username":null,"password":"p"}`, "username"},
		{"authn: unknown field", emqx.AuthnPath, "application/json", `{"clientid":"a","username":"a","password":"p","passwd":"p"}`, "passwd"},
		{"authn: over the size cap", emqx.AuthnPath, "application/json", huge, ""},
		{"authn: form content type", emqx.AuthnPath, "application/x-www-form-urlencoded", authnBody("a", "a", "a"), ""},
		{"authz: no topic", emqx.AuthzPath, "application/json", `{"username":"a","clientid":"a","action":"publish"}`, "topic"},
		{"authz: unknown action", emqx.AuthzPath, "application/json", authzBody("a", "a", "all", "t"), "action"},
		{"authz: no action", emqx.AuthzPath, "application/json", `{"username":"a","clientid":"a","topic":"t"}`, "action"},
		{"authz: no username", emqx.AuthzPath, "application/json", `{"clientid":"a","action":"publish","topic":"t"}`, "username"},
		{"authz: qos out of range", emqx.AuthzPath, "application/json", `{"username":"a","clientid":"a","action":"publish","topic":"t","qos":3}`, "qos"},
		{"authz: qos a word", emqx.AuthzPath, "application/json", `{"username":"a","clientid":"a","action":"publish","topic":"t","qos":"one"}`, "qos"},
		{"authz: qos an object", emqx.AuthzPath, "application/json", `{"username":"a","clientid":"a","action":"publish","topic":"t","qos":{}}`, ""},
		{"authz: retain a word", emqx.AuthzPath, "application/json", `{"username":"a","clientid":"a","action":"publish","topic":"t","retain":"yes"}`, "retain"},
		{"authz: topic a list", emqx.AuthzPath, "application/json", `{"username":"a","clientid":"a","action":"publish","topic":["t"]}`, "topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := fx.post(t, tt.path, "Bearer "+secret, tt.contentType, tt.body)
			require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
			m := resp.json(t)
			assert.Equal(t, "invalid", m["code"])
			if tt.field != "" {
				assert.Contains(t, m["errors"], tt.field, "%s", resp.body)
			}
		})
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	fx := newFixture(t)
	resp := fx.post(t, "/mqtt/superuser", "Bearer "+secret, "application/json", "{}")
	assert.Equal(t, http.StatusNotFound, resp.status)
	req := httptest.NewRequest(http.MethodGet, emqx.AuthnPath, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	rec := httptest.NewRecorder()
	fx.h.ServeHTTP(rec, req)
	assert.Less(t, rec.Code, 500)
	assert.NotEqual(t, http.StatusOK, rec.Code)
}

func TestAuthz(t *testing.T) {
	fx := newFixture(t)
	const dev, bridge = "acme/cr-1", "tempwatch-bridge"
	tests := []struct {
		name, username, clientID, action, topic string
		want                                    string
	}{
		{"device publishes to its topic", dev, dev, "publish", ownTopic, "allow"},
		{"device publishes to another device's topic", dev, dev, "publish", "tempwatch/acme/sensors/cr-2/readings", "deny"},
		{"device publishes to another tenant's topic", dev, dev, "publish", "tempwatch/bolt/sensors/cr-1/readings", "deny"},
		{"device subscribes to its topic", dev, dev, "subscribe", ownTopic, "deny"},
		{"device subscribes to #", dev, dev, "subscribe", "#", "deny"},
		{"device subscribes to $SYS/#", dev, dev, "subscribe", "$SYS/#", "deny"},
		{"device subscribes shared", dev, dev, "subscribe", "$share/g/tempwatch/+/sensors/+/readings", "deny"},
		{"device with another client id", dev, "other", "publish", ownTopic, "deny"},
		{"bridge subscribes to readings", bridge, "tempwatch-bridge-1", "subscribe", "tempwatch/+/sensors/+/readings", "allow"},
		{"bridge subscribes shared", bridge, "tempwatch-bridge-1", "subscribe", "$share/tempwatch-bridge/tempwatch/+/sensors/+/readings", "allow"},
		{"bridge subscribes to #", bridge, "tempwatch-bridge-1", "subscribe", "#", "deny"},
		{"bridge publishes", bridge, "tempwatch-bridge-1", "publish", ownTopic, "deny"},
		{"bridge username, foreign client id", bridge, "intruder", "subscribe", "tempwatch/+/sensors/+/readings", "deny"},
		{"anonymous", "", "x", "publish", ownTopic, "deny"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := fx.broker(t, emqx.AuthzPath, authzBody(tt.username, tt.clientID, tt.action, tt.topic))
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			assert.Equal(t, "application/json", resp.header.Get("Content-Type"))
			assert.Equal(t, map[string]any{"result": tt.want}, resp.json(t))
		})
	}
}

// TestAuthzQoSAndRetainShapes: EMQX renders ${qos} and ${retain} as strings
// when the template quotes them and as JSON scalars when it does not.
func TestAuthzQoSAndRetainShapes(t *testing.T) {
	fx := newFixture(t)
	for _, extra := range []string{``, `,"qos":1,"retain":false`, `,"qos":"2","retain":"true"`, `,"qos":0,"retain":true`, `,"qos":null`} {
		body := fmt.Sprintf(`{"username":"acme/cr-1","clientid":"acme/cr-1","action":"publish","topic":%q%s}`, ownTopic, extra)
		resp := fx.broker(t, emqx.AuthzPath, body)
		require.Equal(t, http.StatusOK, resp.status, "%s: %s", body, resp.body)
		assert.Equal(t, "allow", resp.json(t)["result"], body)
	}
}

// emqxDecides is how EMQX 5.8 decides a client's action with the ACL from
// its CONNECT and, where no rule matches, the HTTP authorizer (/mqtt/authz),
// with authorization.no_match = deny behind it. Rule topics are "eq <topic>"
// (that string exactly) or "#" (any topic or filter not starting with '$',
// as MQTT wildcards do not match '$' topics).
func emqxDecides(t *testing.T, fx *fixture, acl []emqx.ACLRule, username, clientID, action, topic string) string {
	t.Helper()
	for _, r := range acl {
		if r.Action != action && r.Action != "all" {
			continue
		}
		var match bool
		switch {
		case strings.HasPrefix(r.Topic, "eq "):
			match = topic == strings.TrimPrefix(r.Topic, "eq ")
		case r.Topic == "#":
			match = !strings.HasPrefix(topic, "$")
		default:
			t.Fatalf("the ACL holds a rule topic %q this test cannot evaluate", r.Topic)
		}
		if match {
			return r.Permission
		}
	}
	resp := fx.broker(t, emqx.AuthzPath, authzBody(username, clientID, action, topic))
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	return resp.json(t)["result"].(string)
}

// TestACLAgreesWithAllowed walks topic shapes through the ACL a CONNECT
// returns (then /mqtt/authz, as EMQX does) and checks every outcome is the
// decision's own.
func TestACLAgreesWithAllowed(t *testing.T) {
	fx := newFixture(t)
	auth, err := deviceauth.New(fx.keys, deviceauth.Bridge{Password: bridgePass})
	require.NoError(t, err)
	topics := []string{
		ownTopic,
		"tempwatch/acme/sensors/cr-2/readings",
		"tempwatch/bolt/sensors/cr-1/readings",
		"tempwatch/bolt/sensors/truck.7/readings",
		"tempwatch/acme/sensors/+/readings",
		"tempwatch/+/sensors/+/readings",
		"tempwatch/+/sensors/cr-1/readings",
		"tempwatch/acme/sensors/cr-1/#",
		"tempwatch/#",
		"#",
		"+/+/+/+/+",
		ownTopic + "/",
		"/" + ownTopic,
		"tempwatch/acme//sensors/cr-1/readings",
		"tempwatch/acme/sensors/cr-1/../cr-2/readings",
		"tempwatch/acmе/sensors/cr-1/readings", // Cyrillic е
		"tempwatch/ACME/sensors/cr-1/readings",
		ownTopic + strings.Repeat("/x", 20000),
		"$SYS/#",
		"$SYS/brokers",
		"$share/g/" + ownTopic,
		"$share/g/tempwatch/+/sensors/+/readings",
		"$share//tempwatch/+/sensors/+/readings",
		"$queue/tempwatch/+/sensors/+/readings",
		"$delayed/10/" + ownTopic,
		"eq " + ownTopic,
		"${username}",
		"tempwatch/${clientid}/readings",
		"",
	}
	clients := []struct {
		name, clientID, username, password string
	}{
		{"device acme/cr-1", "acme/cr-1", "acme/cr-1", keyA},
		{"device bolt/truck.7", "bolt/truck.7", "bolt/truck.7", keyB},
		{"bridge", "tempwatch-bridge-1", "tempwatch-bridge", bridgePass},
	}
	allowed := 0
	for _, c := range clients {
		resp := fx.broker(t, emqx.AuthnPath, authnBody(c.clientID, c.username, c.password))
		var got emqx.AuthnResponse
		require.NoError(t, json.Unmarshal(resp.body, &got))
		require.Equal(t, "allow", got.Result, c.name)
		for _, action := range []string{"publish", "subscribe"} {
			for _, topic := range topics {
				want := "deny"
				if auth.Allowed(c.username, c.clientID, deviceauth.Action(action), topic) {
					want = "allow"
					allowed++
				}
				assert.Equal(t, want, emqxDecides(t, fx, got.ACL, c.username, c.clientID, action, topic),
					"%s %s %.80q", c.name, action, topic)
			}
		}
	}
	assert.Positive(t, allowed, "the table must hold allowed actions too")
}

func TestStoreErrorsAreNotRefusalsInTheLog(t *testing.T) {
	// A refusal is routine (Info); a failing key store is an error an
	// operator must see.
	fx := newFixture(t)
	fx.broker(t, emqx.AuthnPath, authnBody("acme/cr-1", "acme/cr-1", "twk_unknown"))
	assert.Contains(t, fx.logs.String(), "mqtt connect refused")
	assert.NotContains(t, fx.logs.String(), "level=ERROR")
}
