// Package app builds what every function's main needs from the environment:
// the logger, PostgreSQL, Redis, MongoDB where asked for and, for HTTP
// functions, the token check.
// It keeps mains to configuration, wiring and the runtime call.
package app

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	gomongo "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/logging"
	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/redis"
)

// Tokens says what a function does with access tokens, and so which keys it
// is given: only the auth function holds private keys.
type Tokens int

const (
	// NoTokens: the function reads no JWT_* variable (devices, the broker).
	NoTokens Tokens = iota
	// VerifiesTokens loads JWT_PUBLIC_KEYS, JWT_ISSUER and JWT_AUDIENCE.
	VerifiesTokens
	// SignsTokens loads JWT_SIGNING_KEYS, JWT_ACTIVE_KID, JWT_ISSUER,
	// JWT_AUDIENCE and the token lifetimes: the auth function.
	SignsTokens
)

// Needs says what a function reads beyond the common variables.
type Needs struct {
	// Tokens selects the JWT_* variables loaded: none, public keys or
	// signing keys.
	Tokens Tokens
	// Mongo loads MONGODB_URL (required) and MONGODB_DATABASE and opens that
	// database, for functions that read or write the archive.
	Mongo bool
	// Config reads the function's own variables; its problems are reported
	// together with the common ones.
	Config func(r *config.Reader)
	// NoRedis leaves out REDIS_URL and REDIS_PREFIX (Env.Redis is nil), for
	// a function that caches nothing and checks no token: the scheduled
	// sweeps.
	NoRedis bool
}

// Env is what Load opened.
type Env struct {
	Log *slog.Logger
	DB  *pgxpool.Pool
	// Redis is the Redis adapter's client, on REDIS_PREFIX, reporting its
	// failures to Log; nil with Needs.NoRedis.
	Redis *redis.Client
	JWT   auth.JWTConfig
	// Mongo is the archive's database, when Needs.Mongo asked for it.
	Mongo *gomongo.Database

	cutoffsOnce sync.Once
	cutoffs     *redis.TokenCutoffs
	sessions    *redis.TokenCutoffs
}

// Load names the process's metrics after the function (metrics.SetFunction),
// reads DATABASE_URL, REDIS_URL, REDIS_PREFIX, LOG_LEVEL (and what needs
// asks for) through getenv, then opens PostgreSQL (applying migrations), a
// Redis client (which does not fail when Redis is away: it is a cache) and,
// when asked, MongoDB (which must answer).
func Load(ctx context.Context, name string, getenv config.Getenv, needs Needs) (*Env, error) {
	metrics.SetFunction(name)
	r := config.NewReader(getenv)
	dbURL := r.URL("DATABASE_URL", "", "postgres", "postgresql")
	var redisURL, redisPrefix string
	if !needs.NoRedis {
		redisURL = r.URL("REDIS_URL", "redis://127.0.0.1:6379/0", "redis", "rediss")
		redisPrefix = r.String("REDIS_PREFIX", redis.DefaultPrefix)
	}
	e := &Env{
		Log: logging.New(os.Stderr, r.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error")).With("function", name),
	}
	switch needs.Tokens {
	case VerifiesTokens:
		e.JWT = auth.LoadJWTVerifier(r)
	case SignsTokens:
		e.JWT = auth.LoadJWTSigner(r)
	}
	var mongoURL, mongoDB string
	if needs.Mongo {
		mongoURL = r.URL("MONGODB_URL", "", "mongodb", "mongodb+srv")
		mongoDB = r.String("MONGODB_DATABASE", "tempwatch")
	}
	if needs.Config != nil {
		needs.Config(r)
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if !needs.NoRedis {
		rdb, err := redis.Open(redisURL, redis.Options{Prefix: redisPrefix, Log: e.Log})
		if err != nil {
			return nil, err
		}
		e.Redis = rdb
	}
	var err error
	if e.DB, err = postgres.Open(ctx, dbURL); err != nil {
		return nil, err
	}
	if needs.Mongo {
		mc, err := mongo.Open(ctx, mongoURL)
		if err != nil {
			e.DB.Close()
			return nil, err
		}
		e.Mongo = mc.Database(mongoDB)
	}
	return e, nil
}

// MustLoad is Load from the process environment; a problem ends the process
// with a message naming it, as Lambda reports an init error.
func MustLoad(name string, needs Needs) *Env {
	e, err := Load(context.Background(), name, os.Getenv, needs)
	if err != nil {
		config.Exit(name, err)
	}
	return e
}

// HTTP is h as a function serves it: behind Middleware with the bearer-token
// check (the users' token cutoffs and the sessions' states).
func (e *Env) HTTP(h http.Handler) http.Handler {
	v := auth.NewVerifier(e.JWT).WithChecker(redis.NewTokenChecks(e.TokenCutoffs(), e.SessionStates()))
	return Middleware(e.Log, v, h)
}

// TokenCutoffs is the users' token cutoffs of this process, one copy in
// memory shared by its token check and the changes it writes through.
func (e *Env) TokenCutoffs() *redis.TokenCutoffs {
	e.once()
	return e.cutoffs
}

// SessionStates is the sessions' states of this process, shared as
// TokenCutoffs is.
func (e *Env) SessionStates() *redis.TokenCutoffs {
	e.once()
	return e.sessions
}

func (e *Env) once() {
	e.cutoffsOnce.Do(func() {
		e.cutoffs = redis.NewTokenCutoffs(e.Redis, postgres.NewUserStore(e.DB))
		e.sessions = redis.NewSessionStates(e.Redis, postgres.NewSessionStates(e.DB))
	})
}

// Middleware is the one middleware stack of every HTTP function, applied
// once at its composition root: a request id, an access log line and panic
// recovery (httpapi.Wrap) around, when v is not nil, the bearer-token check
// (auth.Authenticated) around h.
func Middleware(log *slog.Logger, v *auth.Verifier, h http.Handler) http.Handler {
	if v != nil {
		h = auth.Authenticated(v, log, h)
	}
	return httpapi.Wrap(log, h)
}
