package apitest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/emqx"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/mongo/mongotest"
	"github.com/tempwatch/tempwatch/shared/openapi/openapitest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The callers of the tenant table, in the order of routeCase.want, then the
// MQTT broker (see brokerGets).
var callers = []string{"admin", "client_admin of A", "viewer of A", "client_admin of B", "anonymous", "broker"}

// broker is the index of the MQTT broker in callers: it calls with the
// shared broker secret as its bearer token and no user token.
const broker = 5

// brokerSecret is the broker's secret in this test's API.
const brokerSecret = "routes-test-broker-secret-0123456789abcdef"

// brokerGets is what the broker gets on the routes that serve it, each a
// decision of an allowed device of A. On every other route its secret is no
// credential: it gets what an anonymous caller gets.
var brokerGets = map[string]int{"POST /mqtt/authn": 200, "POST /mqtt/authz": 200}

// fixture is the whole API (every function of template.yaml behind its
// routes, as API Gateway routes them) over a fresh database, Redis prefix
// and MongoDB database.
type fixture struct {
	t         *testing.T
	env       *apitest.Env
	api       http.Handler
	functions map[string]http.Handler // each function's handler by its template name
	jwt       auth.JWTConfig
	archive   *mongo.PayloadStore
}

func newFixture(t *testing.T, routes []openapitest.Route) *fixture {
	t.Helper()
	env := apitest.MustEnv(t)
	rc := redistest.MustAdapter(t)
	jwt := apitest.MustJWT(t)
	log := apitest.Discard()
	archiveStore := mongo.NewPayloadStore(mongotest.MustDatabase(t))
	// Only the auth function holds the private key; the others verify its
	// tokens with the public half, as deployed.
	signer := &app.Env{Log: log, DB: env.DB, Redis: rc, JWT: jwt}
	deployed := &app.Env{Log: log, DB: env.DB, Redis: rc, JWT: jwt.PublicOnly()}
	// The ingest route's entry only sends user tokens, which are refused
	// before a payload is archived, so no archive is configured.
	ingestAPI, _ := app.Ingest(deployed, nil, ingest.Config{})
	mqttAuth, err := app.MQTTAuth(deployed, emqx.Config{Secret: brokerSecret, DeviceSession: time.Hour,
		Bridge: deviceauth.Bridge{Password: "routes-test-bridge-password-0123"}})
	require.NoError(t, err)
	functions := map[string]http.Handler{
		"AuthFunction":         app.Auth(signer),
		"UsersFunction":        app.Users(deployed),
		"ClientsFunction":      app.Clients(deployed),
		"SensorsFunction":      app.Sensors(deployed),
		"AlarmsFunction":       app.Alarms(deployed),
		"MeasurementsFunction": app.Measurements(deployed),
		"ReadingsFunction":     app.Readings(deployed, 0),
		"StatisticsFunction":   app.Statistics(deployed),
		"IngestFunction":       ingestAPI,
		"ArchiveFunction":      app.Archive(deployed, archiveStore, tempwatch.DefaultDeadLetterTTL),
		"OpenAPIFunction":      app.OpenAPI(log),
		"ConsoleFunction":      app.Console(log),
		"MqttAuthFunction":     mqttAuth,
	}
	mux := http.NewServeMux()
	for _, r := range routes {
		h, ok := functions[r.Function]
		if !ok {
			t.Fatalf("template.yaml function %s has no handler in this test: add it to the functions map", r.Function)
		}
		mux.Handle(r.Method+" "+r.Path, h)
	}
	// A route template.yaml has not is answered as the gateways answer it
	// (infra/gateway; on AWS the API's gateway responses): a 404 problem
	// with a code and a request id, as every function answers one.
	mux.Handle("/", httpapi.Wrap(log, httpapi.NewRouter(log)))
	return &fixture{t: t, env: env, api: mux, functions: functions, jwt: jwt, archive: archiveStore}
}

func random() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// caller returns the principal of callers[i] (ok false: anonymous, or the broker).
func (fx *fixture) caller(i int) (tempwatch.Principal, bool) {
	switch i {
	case 0:
		return fx.env.Admin, true
	case 1:
		return fx.env.AdminA, true
	case 2:
		return fx.env.ViewerA, true
	case 3:
		return fx.env.AdminB, true
	}
	return tempwatch.Principal{}, false
}

// sensorA returns a new sensor of client A with one reading an hour ago.
func (fx *fixture) sensorA() string {
	id := pgtest.MustSensor(fx.t, fx.env.DB, fx.env.ClientA, "dev-"+random(), "key-"+random())
	fx.readingOf(id)
	return id
}

// alarmA returns the id of an open high alarm of a new sensor of client A.
func (fx *fixture) alarmA() string {
	return pgtest.MustAlarm(fx.t, fx.env.DB, fx.sensorA(), tempwatch.AlarmHigh, tempwatch.AlarmOpen, time.Now().Add(-time.Hour))
}

// measurementA returns the id of the reading of a new sensor of client A.
func (fx *fixture) measurementA() string {
	return fx.readingOf(pgtest.MustSensor(fx.t, fx.env.DB, fx.env.ClientA, "dev-"+random(), "key-"+random()))
}

// readingOf stores a reading of sensor (as ingest does: with its rollup) and returns its id.
func (fx *fixture) readingOf(sensor string) string {
	var id int64
	require.NoError(fx.t, fx.env.DB.QueryRow(context.Background(), `WITH r AS (
			INSERT INTO readings (sensor_id, value, measured_at) VALUES ($1, 21.5, date_trunc('second', now()) - interval '1 hour')
			RETURNING id, measured_at)
		SELECT id FROM r`, sensor).Scan(&id))
	_, err := fx.env.DB.Exec(context.Background(), `SELECT recompute_rollup($1, rollup_bucket(date_trunc('second', now()) - interval '1 hour'))`, sensor)
	require.NoError(fx.t, err)
	return fmt.Sprint(id)
}

// archivedMeasurementA returns the id of a reading of a new sensor of
// client A whose raw payload is archived, as ingest leaves it.
func (fx *fixture) archivedMeasurementA() string {
	ctx := context.Background()
	id := fx.measurementA()
	var sensor string
	var at time.Time
	require.NoError(fx.t, fx.env.DB.QueryRow(ctx, `SELECT sensor_id, measured_at FROM readings WHERE id = $1`, id).Scan(&sensor, &at))
	require.NoError(fx.t, fx.archive.InsertRawPayloads(ctx, []tempwatch.RawPayload{{SensorID: sensor, MeasuredAt: at,
		Topic: "tempwatch/client-a/sensors/d/readings", Source: "mqtt", ReceivedAt: at, Raw: []byte(`{"value":21.5}`)}}))
	return id
}

// deadLetterA stores a dead letter of client A received now and returns its id.
func (fx *fixture) deadLetterA() string {
	ctx := context.Background()
	msg := "dl-" + random()
	require.NoError(fx.t, fx.archive.InsertDeadLetters(ctx, []tempwatch.DeadLetter{{MessageID: msg, ClientID: fx.env.ClientA,
		Reason: "payload is not JSON", Topic: "tempwatch/client-a/sensors/d/readings", Source: "mqtt", ReceivedAt: time.Now(), Raw: []byte("{")}}))
	got, err := fx.archive.FindDeadLetters(ctx, tempwatch.DeadLetterFilter{ClientID: fx.env.ClientA, Page: tempwatch.PageRequest{Limit: 500}})
	require.NoError(fx.t, err)
	for _, d := range got {
		if d.MessageID == msg {
			return d.ID
		}
	}
	fx.t.Fatalf("dead letter %s not found", msg)
	return ""
}

// auditEventA records an audit event of client A and returns its id.
func (fx *fixture) auditEventA() string {
	ev := &tempwatch.AuditEvent{ClientID: fx.env.ClientA, Action: tempwatch.ActionUpdate,
		Entity: tempwatch.AuditClient, EntityID: fx.env.ClientA}
	require.NoError(fx.t, postgres.NewAuditLog(fx.env.DB).RecordAudit(context.Background(), ev))
	return ev.ID
}

// deviceA returns the MQTT username (and client id) and the device key of
// a new sensor of client A.
func (fx *fixture) deviceA() (username, key string) {
	dev, key := "dev-"+random(), tempwatch.DeviceKeyPrefix+random()
	pgtest.MustSensor(fx.t, fx.env.DB, fx.env.ClientA, dev, key)
	var slug string
	require.NoError(fx.t, fx.env.DB.QueryRow(context.Background(), `SELECT slug FROM clients WHERE id = $1`, fx.env.ClientA).Scan(&slug))
	return slug + "/" + dev, key
}

// loginA creates a user of A who can log in and returns the login body.
func (fx *fixture) loginA() string {
	email := "login-" + random() + "@example.test"
	apitest.MustLoginUser(fx.t, fx.env, fx.env.ClientA, tempwatch.RoleViewer, email, "correct horse battery staple")
	return fmt.Sprintf(`{"client":"client-a","email":%q,"password":"correct horse battery staple"}`, email)
}

// callersKnowPassword gives every caller of the table the password pw, so
// each can change their own.
func (fx *fixture) callersKnowPassword(pw string) {
	hash, err := auth.HashPassword(pw)
	require.NoError(fx.t, err)
	e := fx.env
	_, err = e.DB.Exec(context.Background(), `UPDATE users SET password_hash = $1 WHERE id = ANY($2::uuid[])`,
		hash, []string{e.Admin.UserID, e.AdminA.UserID, e.ViewerA.UserID, e.AdminB.UserID})
	require.NoError(fx.t, err)
}

// request is one call of a table entry.
type request struct {
	method, path, body string
	// listed, for list routes: an id of client A that the body must show to
	// callers who may read A and hide from the others.
	listed string
}

// routeCase is what each caller gets on one route, on resources of client A.
type routeCase struct {
	route string
	build func(fx *fixture) request
	want  [5]int // admin, client_admin of A, viewer of A, client_admin of B, anonymous; the broker: brokerGets
}

func get(path string) request { return request{method: "GET", path: path} }

// tenantTable lists every route of template.yaml. A route missing here
// fails TestTenantIsolationRouteTable.
var tenantTable = []routeCase{
	// auth: public entry points and the caller's own session.
	{"POST /auth/login", func(fx *fixture) request {
		return request{method: "POST", path: "/auth/login", body: fx.loginA()}
	}, [5]int{200, 200, 200, 200, 200}},
	{"POST /auth/refresh", func(fx *fixture) request {
		resp := apitest.DoToken(fx.t, fx.api, "", "POST", "/auth/login", fx.loginA())
		require.Equal(fx.t, http.StatusOK, resp.Status, string(resp.Body))
		var tok struct {
			RefreshToken string `json:"refresh_token"`
		}
		resp.Decode(fx.t, &tok)
		return request{method: "POST", path: "/auth/refresh", body: fmt.Sprintf(`{"refresh_token":%q}`, tok.RefreshToken)}
	}, [5]int{200, 200, 200, 200, 200}},
	{"POST /auth/logout", func(fx *fixture) request { return request{method: "POST", path: "/auth/logout"} },
		[5]int{204, 204, 204, 204, 401}},
	{"GET /auth/me", func(fx *fixture) request { return get("/auth/me") }, [5]int{200, 200, 200, 200, 401}},
	{"POST /auth/password", func(fx *fixture) request {
		fx.callersKnowPassword("correct horse battery staple")
		return request{method: "POST", path: "/auth/password",
			body: `{"current_password":"correct horse battery staple","new_password":"another horse battery staple"}`}
	}, [5]int{200, 200, 200, 200, 401}},

	// users: a viewer of A is the resource.
	{"GET /users", func(fx *fixture) request {
		u := apitest.MustUser(fx.t, fx.env, fx.env.ClientA, tempwatch.RoleViewer)
		r := get("/users?limit=500")
		r.listed = u.UserID
		return r
	}, [5]int{200, 200, 200, 200, 401}},
	{"POST /users", func(fx *fixture) request {
		return request{method: "POST", path: "/users", body: fmt.Sprintf(
			`{"email":"new-%s@example.test","role":"viewer","client_id":%q,"password":"correct horse battery staple"}`, random(), fx.env.ClientA)}
	}, [5]int{201, 201, 403, 404, 401}},
	{"GET /users/{id}", func(fx *fixture) request {
		return get("/users/" + apitest.MustUser(fx.t, fx.env, fx.env.ClientA, tempwatch.RoleViewer).UserID)
	}, [5]int{200, 200, 200, 404, 401}},
	{"PATCH /users/{id}", func(fx *fixture) request {
		return request{method: "PATCH", path: "/users/" + apitest.MustUser(fx.t, fx.env, fx.env.ClientA, tempwatch.RoleViewer).UserID, body: `{"name":"Renamed"}`}
	}, [5]int{200, 200, 403, 404, 401}},
	{"DELETE /users/{id}", func(fx *fixture) request {
		return request{method: "DELETE", path: "/users/" + apitest.MustUser(fx.t, fx.env, fx.env.ClientA, tempwatch.RoleViewer).UserID}
	}, [5]int{204, 204, 403, 404, 401}},

	// clients: client A itself is the resource.
	{"GET /clients", func(fx *fixture) request {
		r := get("/clients")
		r.listed = fx.env.ClientA
		return r
	}, [5]int{200, 200, 200, 200, 401}},
	{"POST /clients", func(fx *fixture) request {
		return request{method: "POST", path: "/clients", body: fmt.Sprintf(`{"name":"New","slug":"new-%s"}`, random())}
	}, [5]int{201, 403, 403, 403, 401}},
	{"GET /clients/{id}", func(fx *fixture) request { return get("/clients/" + fx.env.ClientA) }, [5]int{200, 200, 200, 404, 401}},
	{"PATCH /clients/{id}", func(fx *fixture) request {
		return request{method: "PATCH", path: "/clients/" + fx.env.ClientA, body: `{"name":"Renamed"}`}
	}, [5]int{200, 200, 403, 404, 401}},
	{"DELETE /clients/{id}", func(fx *fixture) request {
		return request{method: "DELETE", path: "/clients/" + fx.env.ClientA}
	}, [5]int{204, 403, 403, 404, 401}},
	{"GET /clients/{id}/daily-averages", func(fx *fixture) request {
		fx.sensorA()
		return get("/clients/" + fx.env.ClientA + "/daily-averages")
	}, [5]int{200, 200, 200, 404, 401}},

	// sensors: a sensor of A is the resource.
	{"GET /sensors", func(fx *fixture) request {
		r := get("/sensors?limit=500")
		r.listed = fx.sensorA()
		return r
	}, [5]int{200, 200, 200, 200, 401}},
	{"POST /sensors", func(fx *fixture) request {
		return request{method: "POST", path: "/sensors", body: fmt.Sprintf(`{"client_id":%q,"device_id":"d-%s","name":"New"}`, fx.env.ClientA, random())}
	}, [5]int{201, 201, 403, 404, 401}},
	{"GET /sensors/{id}", func(fx *fixture) request { return get("/sensors/" + fx.sensorA()) }, [5]int{200, 200, 200, 404, 401}},
	{"PATCH /sensors/{id}", func(fx *fixture) request {
		return request{method: "PATCH", path: "/sensors/" + fx.sensorA(), body: `{"name":"Renamed"}`}
	}, [5]int{200, 200, 403, 404, 401}},
	{"DELETE /sensors/{id}", func(fx *fixture) request {
		return request{method: "DELETE", path: "/sensors/" + fx.sensorA()}
	}, [5]int{204, 204, 403, 404, 401}},
	{"POST /sensors/{id}/rotate-key", func(fx *fixture) request {
		return request{method: "POST", path: "/sensors/" + fx.sensorA() + "/rotate-key"}
	}, [5]int{200, 200, 403, 404, 401}},
	{"GET /sensors/{id}/readings", func(fx *fixture) request {
		return get("/sensors/" + fx.sensorA() + "/readings")
	}, [5]int{200, 200, 200, 404, 401}},
	{"GET /sensors/{id}/readings/latest", func(fx *fixture) request {
		return get("/sensors/" + fx.sensorA() + "/readings/latest")
	}, [5]int{200, 200, 200, 404, 401}},
	{"GET /sensors/{id}/daily-averages", func(fx *fixture) request {
		return get("/sensors/" + fx.sensorA() + "/daily-averages")
	}, [5]int{200, 200, 200, 404, 401}},

	// alarms: an open alarm of a sensor of A; viewers acknowledge too.
	{"GET /alarms", func(fx *fixture) request {
		r := get("/alarms?limit=500")
		r.listed = fx.alarmA()
		return r
	}, [5]int{200, 200, 200, 200, 401}},
	{"GET /alarms/{id}", func(fx *fixture) request { return get("/alarms/" + fx.alarmA()) }, [5]int{200, 200, 200, 404, 401}},
	{"POST /alarms/{id}/ack", func(fx *fixture) request {
		return request{method: "POST", path: "/alarms/" + fx.alarmA() + "/ack", body: `{"comment":"Checked the door."}`}
	}, [5]int{200, 200, 200, 404, 401}},

	// measurements: a reading of a sensor of A is the resource.
	{"GET /measurements", func(fx *fixture) request {
		return get("/measurements?sensor_id=" + fx.sensorA())
	}, [5]int{200, 200, 200, 404, 401}},
	{"POST /measurements", func(fx *fixture) request {
		return request{method: "POST", path: "/measurements", body: fmt.Sprintf(`{"sensor_id":%q,"value":4.5}`, fx.sensorA())}
	}, [5]int{201, 201, 403, 404, 401}},
	{"GET /measurements/{id}", func(fx *fixture) request {
		return get("/measurements/" + fx.measurementA())
	}, [5]int{200, 200, 200, 404, 401}},
	{"PATCH /measurements/{id}", func(fx *fixture) request {
		return request{method: "PATCH", path: "/measurements/" + fx.measurementA(), body: `{"value":3}`}
	}, [5]int{200, 200, 403, 404, 401}},
	{"DELETE /measurements/{id}", func(fx *fixture) request {
		return request{method: "DELETE", path: "/measurements/" + fx.measurementA()}
	}, [5]int{204, 204, 403, 404, 401}},

	// archive: a dead letter of A, and the raw payload of a reading of A.
	// audit: read-only; client admins their own client's, viewers nothing.
	{"GET /audit", func(fx *fixture) request {
		r := get("/audit?limit=500")
		r.listed = fx.auditEventA()
		return r
	}, [5]int{200, 200, 403, 200, 401}},
	{"GET /audit/{id}", func(fx *fixture) request {
		return get("/audit/" + fx.auditEventA())
	}, [5]int{200, 200, 403, 404, 401}},
	{"GET /dead-letters", func(fx *fixture) request {
		r := get("/dead-letters?limit=500")
		r.listed = fx.deadLetterA()
		return r
	}, [5]int{200, 200, 200, 200, 401}},
	{"GET /dead-letters/{id}", func(fx *fixture) request {
		return get("/dead-letters/" + fx.deadLetterA())
	}, [5]int{200, 200, 200, 404, 401}},
	{"GET /measurements/{id}/raw", func(fx *fixture) request {
		return get("/measurements/" + fx.archivedMeasurementA() + "/raw")
	}, [5]int{200, 200, 200, 404, 401}},

	// ingest: devices only; a user's bearer token is no device credential.
	{"POST /ingest/readings", func(fx *fixture) request {
		fx.sensorA()
		return request{method: "POST", path: "/ingest/readings", body: `{"value":20}`}
	}, [5]int{401, 401, 401, 401, 401}},

	// mqtt: the broker's routes (brokerGets). A user's token, anonymous or
	// not, gets no decision about a device of A.
	{"POST /mqtt/authn", func(fx *fixture) request {
		user, key := fx.deviceA()
		return request{method: "POST", path: "/mqtt/authn",
			body: fmt.Sprintf(`{"clientid":%q,"username":%q,"password":%q,"peerhost":"192.0.2.1"}`, user, user, key)}
	}, [5]int{401, 401, 401, 401, 401}},
	{"POST /mqtt/authz", func(fx *fixture) request {
		user, _ := fx.deviceA()
		return request{method: "POST", path: "/mqtt/authz", body: fmt.Sprintf(
			`{"username":%q,"clientid":%q,"action":"publish","topic":"tempwatch/%s/readings","qos":"1","retain":"false"}`,
			user, user, strings.Replace(user, "/", "/sensors/", 1))}
	}, [5]int{401, 401, 401, 401, 401}},

	// The token key set and the contract are public.
	{"GET /.well-known/jwks.json", func(fx *fixture) request { return get("/.well-known/jwks.json") }, [5]int{200, 200, 200, 200, 200}},
	{"GET /openapi.json", func(fx *fixture) request { return get("/openapi.json") }, [5]int{200, 200, 200, 200, 200}},

	// The admin console holds no data: its page and files are public.
	{"GET /console", func(fx *fixture) request { return get("/console") }, [5]int{200, 200, 200, 200, 200}},
	{"GET /console/{asset}", func(fx *fixture) request { return get("/console/console.mjs") }, [5]int{200, 200, 200, 200, 200}},
	{"GET /console/views/{view}", func(fx *fixture) request { return get("/console/views/clients.mjs") }, [5]int{200, 200, 200, 200, 200}},
}

// TestTenantIsolationRouteTable walks every route of template.yaml as each
// caller, on fresh resources of client A, with real tokens through the real
// middleware, and checks each response against the OpenAPI document.
func TestTenantIsolationRouteTable(t *testing.T) {
	path, err := openapitest.FindTemplate()
	require.NoError(t, err)
	routes, err := openapitest.TemplateRoutes(path)
	require.NoError(t, err)

	byRoute := map[string]routeCase{}
	for _, c := range tenantTable {
		require.NotContains(t, byRoute, c.route, "route listed twice in the tenant table")
		byRoute[c.route] = c
	}
	inTemplate := map[string]bool{}
	for _, r := range routes {
		inTemplate[r.String()] = true
		if _, ok := byRoute[r.String()]; !ok {
			t.Errorf("template.yaml route %s is not in the tenant table: add what each caller gets on a resource of client A", r)
		}
	}
	for route := range byRoute {
		if !inTemplate[route] {
			t.Errorf("tenant table route %s is not in template.yaml", route)
		}
	}
	for route := range brokerGets {
		if _, ok := byRoute[route]; !ok {
			t.Errorf("brokerGets route %s is not in the tenant table", route)
		}
	}

	for _, c := range tenantTable {
		if !inTemplate[c.route] {
			continue
		}
		t.Run(c.route, func(t *testing.T) {
			t.Parallel()
			// One API per route; every call builds fresh resources of A, and
			// the most powerful caller goes last, so a delete of client A
			// (admin only) cannot hide what the others get.
			fx := newFixture(t, routes)
			for _, i := range []int{broker, 3, 4, 2, 1, 0} {
				t.Run(callers[i], func(t *testing.T) {
					fx.t = t
					req := c.build(fx)
					token := ""
					if p, ok := fx.caller(i); ok {
						token = apitest.MustSessionToken(t, fx.env.DB, fx.jwt, p)
					}
					want := c.want[min(i, 4)]
					if i == broker {
						token = brokerSecret
						if status, ok := brokerGets[c.route]; ok {
							want = status
						}
					}
					resp := apitest.DoToken(t, fx.api, token, req.method, req.path, req.body)
					body := resp.Body
					require.Equal(t, want, resp.Status, "%s %s as %s: %s", req.method, req.path, callers[i], body)
					if _, served := brokerGets[c.route]; served && i == broker {
						assert.Equal(t, "allow", resp.JSON(t)["result"], "the broker gets the decision on a device of A: %s", body)
					}
					if req.listed != "" && resp.Status == http.StatusOK {
						if i <= 2 {
							assert.Contains(t, string(body), req.listed, "%s must list client A's %s", callers[i], req.listed)
						} else {
							assert.NotContains(t, string(body), req.listed, "%s must not see client A's %s", callers[i], req.listed)
						}
					}
				})
			}
		})
	}
}
