package app

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/tempwatch/tempwatch/shared/alarms"
	"github.com/tempwatch/tempwatch/shared/archive"
	"github.com/tempwatch/tempwatch/shared/audit"
	"github.com/tempwatch/tempwatch/shared/auth/session"
	"github.com/tempwatch/tempwatch/shared/awsiot"
	"github.com/tempwatch/tempwatch/shared/clients"
	"github.com/tempwatch/tempwatch/shared/console"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/emqx"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/measurements"
	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/openapi"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/readings"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/sensors"
	"github.com/tempwatch/tempwatch/shared/statistics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/users"
)

// The composition root: one wiring function per function of template.yaml,
// used by its main and by the route tests (shared/apitest), so what the
// tests call is what is deployed. Each returns the function's handler with
// its middleware applied once.

// Auth is the auth function: login, refresh, logout, me, password.
func Auth(e *Env) http.Handler {
	return e.HTTP(session.NewHandler(session.Deps{
		Users:   e.TokenCutoffs().Users(postgres.NewUserStore(e.DB)),
		Tokens:  e.SessionStates().RefreshTokens(postgres.NewRefreshTokenStore(e.DB)),
		JWT:     e.JWT,
		Limiter: redis.NewLimiter(e.Redis),
		Audit:   postgres.NewAuditLog(e.DB),
		Log:     e.Log,
	}))
}

// Users is the users function: the users, and the audit trail.
func Users(e *Env) http.Handler {
	return e.HTTP(UsersRoutes(e.TokenCutoffs().Users(postgres.NewUserStore(e.DB)), postgres.NewAuditLog(e.DB), e.Log))
}

// UsersRoutes are the users function's routes over its stores, without
// middleware: /users, and /audit (read-only).
func UsersRoutes(store tempwatch.UserStore, trail tempwatch.AuditLog, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	auditRoutes := audit.NewHandler(trail, log)
	mux.Handle("/audit", auditRoutes)
	mux.Handle("/audit/", auditRoutes)
	mux.Handle("/", users.NewHandler(store, log))
	return mux
}

// Clients is the clients function.
func Clients(e *Env) http.Handler {
	return e.HTTP(clients.NewHandler(e.TokenCutoffs().Clients(postgres.NewClientStore(e.DB)), e.Log))
}

// Sensors is the sensors function: sensors with their latest reading, and
// device keys.
func Sensors(e *Env) http.Handler {
	caches := redis.NewSensorCaches(e.Redis, postgres.NewReadingStore(e.DB))
	return e.HTTP(sensors.NewHandler(postgres.NewSensorStore(e.DB), caches, e.Log))
}

// Alarms is the alarms function: the alarms of excursions and silences, and
// their acknowledgements.
func Alarms(e *Env) http.Handler {
	return e.HTTP(alarms.NewHandler(postgres.NewAlarmStore(e.DB), e.Log))
}

// Measurements is the measurements function: readings one at a time.
func Measurements(e *Env) http.Handler {
	return e.HTTP(measurements.NewHandler(postgres.NewReadingStore(e.DB), postgres.NewSensorStore(e.DB),
		redis.NewCache(e.Redis, redis.CacheOptions{}), e.Log))
}

// Readings is the readings function: a sensor's pages and latest reading,
// the latest kept in process memory for localTTL (0: not at all).
func Readings(e *Env, localTTL time.Duration) http.Handler {
	store := postgres.NewReadingStore(e.DB)
	return e.HTTP(readings.NewHandler(store, redis.NewCache(e.Redis, redis.CacheOptions{Store: store, LocalTTL: localTTL}), e.Log))
}

// Statistics is the statistics function: daily averages.
func Statistics(e *Env) http.Handler {
	store := postgres.NewReadingStore(e.DB)
	return e.HTTP(statistics.NewHandler(store, redis.NewCache(e.Redis, redis.CacheOptions{Store: store}), e.Log))
}

// Archive is the archive function's HTTP side over store: dead letters and
// raw payloads younger than ttl.
func Archive(e *Env, store *mongo.PayloadStore, ttl time.Duration) http.Handler {
	return e.HTTP(archive.NewHandler(archive.Deps{DeadLetters: store, Payloads: store,
		Measurements: postgres.NewReadingStore(e.DB), TTL: ttl, Log: e.Log}))
}

// Ingest is the ingest function: the device's HTTP route (devices prove who
// they are with their key, not a token) and the service its batch events
// go to. payloads may be nil (nothing archived).
func Ingest(e *Env, payloads tempwatch.PayloadArchive, cfg ingest.Config) (http.Handler, *ingest.Service) {
	svc := ingest.NewService(devices(e), postgres.NewReadingStore(e.DB), payloads,
		redis.NewCache(e.Redis, redis.CacheOptions{}), e.Log, cfg)
	return Middleware(e.Log, nil, ingest.NewHandler(svc, e.Log)), svc
}

// MQTTAuth is the mqttauth function: EMQX's HTTP authentication and
// authorization, for the broker only (cfg.Secret).
func MQTTAuth(e *Env, cfg emqx.Config) (http.Handler, error) {
	authority, err := deviceauth.New(devices(e), cfg.Bridge)
	if err != nil {
		return nil, err
	}
	h, err := emqx.NewHandler(authority, cfg, e.Log, nil)
	if err != nil {
		return nil, err
	}
	return Middleware(e.Log, nil, h), nil
}

// IoTAuth is the iotauth function: AWS IoT Core's custom authorizer.
func IoTAuth(e *Env) (*awsiot.Handler, error) {
	authority, err := awsiot.NewAuthority(devices(e))
	if err != nil {
		return nil, err
	}
	return awsiot.NewHandler(authority, e.Log), nil
}

// Console is the console function: the admin console's page and modules.
// It loads no Env, so it names its metrics itself.
func Console(log *slog.Logger) http.Handler {
	metrics.SetFunction("console")
	return httpapi.Wrap(log, console.NewHandler(log))
}

// OpenAPI is the openapi function: the API's document.
func OpenAPI(log *slog.Logger) http.Handler {
	metrics.SetFunction("openapi")
	return httpapi.Wrap(log, openapi.NewHandler(log))
}

// devices is the device lookup every device check uses: in process, then
// Redis, then PostgreSQL.
func devices(e *Env) *ingest.DeviceCache {
	return ingest.NewDeviceCache(redis.NewDeviceStore(e.Redis, postgres.NewDeviceStore(e.DB)), ingest.DeviceCacheOptions{})
}
