// Package stacktest starts a devstack for tests.
package stacktest

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// MustStart starts a stack on free local ports (unless cfg names them),
// collecting every process's output in the returned LogBuffer, which is
// printed if the test fails. The stack is closed when the test ends. Under
// -short (make test-unit, the tier that runs without services) the test is
// skipped: a stack's functions need PostgreSQL and Redis.
func MustStart(tb testing.TB, cfg stack.Config) (*stack.Stack, *stack.LogBuffer) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("stacktest: a devstack needs PostgreSQL and Redis, so not run with -short (make test-unit)")
	}
	if cfg.APIAddr == "" {
		cfg.APIAddr = "127.0.0.1:0"
	}
	if cfg.LambdaAddr == "" {
		cfg.LambdaAddr = "127.0.0.1:0"
	}
	if cfg.MetricsAddr == "" {
		cfg.MetricsAddr = "127.0.0.1:0"
	}
	logs := &stack.LogBuffer{}
	cfg.Logs = logs
	s, err := stack.Start(context.Background(), cfg)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("function logs:\n%s", logs.String())
		}
	})
	require.NoError(tb, err)
	tb.Cleanup(func() { s.Close() })
	return s, logs
}

// Env is a test stack's environment: a PostgreSQL schema and a Redis key
// prefix of the test's own, a fresh token key, and MONGODB_URL when the
// test run names one (make test's FerretDB; else devstack embeds one).
func Env(tb testing.TB) map[string]string {
	tb.Helper()
	signing, _ := auth.NewKeyPair("test")
	_, prefix := redistest.MustClient(tb)
	env := map[string]string{"DATABASE_URL": pgtest.MustSchemaURL(tb), "REDIS_URL": redistest.URL(),
		"REDIS_PREFIX": prefix, "JWT_SIGNING_KEYS": signing}
	if v := os.Getenv("MONGODB_URL"); v != "" {
		env["MONGODB_URL"] = v
	}
	return env
}

// MustAdminToken creates an admin in the stack's database (dbURL, migrated
// by the stack) and returns an access token for them, signed with
// signingKeys (JWT_SIGNING_KEYS) as the auth function would, in a session
// of theirs: the functions refuse a token whose user or session does not
// exist.
func MustAdminToken(tb testing.TB, dbURL, signingKeys string) string {
	tb.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, dbURL)
	require.NoError(tb, err)
	defer db.Close()
	u := &tempwatch.User{Email: "admin-" + auth.NewID() + "@devstack.test", Name: "Test admin", Role: tempwatch.RoleAdmin,
		PasswordHash: "$argon2id$unused"}
	require.NoError(tb, postgres.NewUserStore(db).CreateUser(ctx, u))
	r := config.NewReader(config.MapEnv(map[string]string{"JWT_SIGNING_KEYS": signingKeys}))
	cfg := auth.LoadJWTSigner(r)
	require.NoError(tb, r.Err())
	tok, err := auth.NewIssuer(cfg).Issue(u.Principal(), pgtest.MustSession(tb, db, u.ID))
	require.NoError(tb, err)
	return tok.Token
}
