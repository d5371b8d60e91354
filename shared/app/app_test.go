package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/mongo/mongotest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
)

func TestLoadNamesEveryProblem(t *testing.T) {
	_, err := app.Load(context.Background(), "fn", config.MapEnv(map[string]string{
		"REDIS_URL": "http://not-redis", "LOG_LEVEL": "chatty",
	}), app.Needs{Tokens: app.VerifiesTokens, Mongo: true, Config: func(r *config.Reader) { r.Required("FN_ONLY") }})
	require.Error(t, err)
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "LOG_LEVEL", "JWT_PUBLIC_KEYS", "MONGODB_URL", "FN_ONLY"} {
		assert.Contains(t, err.Error(), name)
	}
}

// Each kind of function reads its own keys and no other: only a signer
// asks for private keys, and a function without tokens asks for none.
func TestLoadReadsTheKeysOfItsTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tokens    app.Tokens
		want, not []string
	}{
		{app.NoTokens, nil, []string{"JWT_"}},
		{app.VerifiesTokens, []string{"JWT_PUBLIC_KEYS"}, []string{"JWT_SIGNING_KEYS", "JWT_ACTIVE_KID"}},
		{app.SignsTokens, []string{"JWT_SIGNING_KEYS"}, []string{"JWT_PUBLIC_KEYS"}},
	}
	for _, tt := range tests {
		read := map[string]bool{}
		_, err := app.Load(context.Background(), "fn", func(k string) string { read[k] = true; return "" }, app.Needs{Tokens: tt.tokens})
		require.Error(t, err, "DATABASE_URL is missing")
		for _, name := range tt.want {
			assert.True(t, read[name], "Tokens %d reads %s", tt.tokens, name)
			assert.Contains(t, err.Error(), name+" is required")
		}
		for name := range read {
			for _, not := range tt.not {
				assert.False(t, strings.HasPrefix(name, not), "Tokens %d reads %s", tt.tokens, name)
			}
		}
	}
}

// A function started on a database the migrate step has not reached fails
// start-up naming both schema versions and how to migrate, and changes
// nothing.
func TestLoadRefusesAnUnmigratedSchema(t *testing.T) {
	t.Parallel()
	url := pgtest.MustSchemaURL(t)
	_, err := app.Load(context.Background(), "fn", config.MapEnv(map[string]string{
		"DATABASE_URL": url, "REDIS_URL": redistest.URL(),
	}), app.Needs{})
	require.ErrorIs(t, err, postgres.ErrSchemaBehind)
	for _, part := range []string{"version 0 (no migrations applied)", "this build needs version", "make migrate"} {
		assert.Contains(t, err.Error(), part)
	}
	db, err := postgres.Connect(context.Background(), url)
	require.NoError(t, err)
	defer db.Close()
	var table *string
	require.NoError(t, db.QueryRow(context.Background(), `SELECT to_regclass('schema_migrations')::text`).Scan(&table))
	assert.Nil(t, table, "start-up ran no DDL")
}

func TestLoadOpensServicesAndGuardsRoutes(t *testing.T) {
	t.Parallel()
	signing, _ := auth.NewKeyPair("k1")
	env, err := app.Load(context.Background(), "fn", config.MapEnv(map[string]string{
		"DATABASE_URL":     pgtest.MustMigratedURL(t),
		"REDIS_URL":        redistest.URL(),
		"JWT_SIGNING_KEYS": signing,
	}), app.Needs{Tokens: app.SignsTokens})
	require.NoError(t, err)
	t.Cleanup(env.DB.Close)
	var n int
	require.NoError(t, env.DB.QueryRow(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&n))
	assert.Positive(t, n, "Load applies the migrations")
	require.NoError(t, env.Redis.Ping(context.Background()))

	reached := false
	rt := httpapi.NewRouter(env.Log)
	rt.Handle("GET /clients", func(w http.ResponseWriter, r *http.Request) error { reached = true; return nil })
	h := env.HTTP(rt)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/clients", nil))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.False(t, reached)
	assert.NotEmpty(t, w.Header().Get("X-Request-Id"), "a refused request still carries a request id")

	admin := &tempwatch.User{Email: "root@example.com", Role: tempwatch.RoleAdmin, PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$a2V5"}
	require.NoError(t, postgres.NewUserStore(env.DB).CreateUser(context.Background(), admin))
	// A token naming no session is refused: the auth function always names one.
	tok, err := auth.NewIssuer(env.JWT).Issue(admin.Principal(), "")
	require.NoError(t, err)
	r := httptest.NewRequest("GET", "/clients", nil)
	r.Header.Set("Authorization", "Bearer "+tok.Token)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.False(t, reached)

	tok, err = auth.NewIssuer(env.JWT).Issue(admin.Principal(), pgtest.MustSession(t, env.DB, admin.ID))
	require.NoError(t, err)
	r.Header.Set("Authorization", "Bearer "+tok.Token)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.True(t, reached)

	// A token of no stored user (deleted, or never there) is refused.
	tok, err = auth.NewIssuer(env.JWT).Issue(tempwatch.Principal{UserID: auth.NewID(), Role: tempwatch.RoleAdmin}, "")
	require.NoError(t, err)
	r.Header.Set("Authorization", "Bearer "+tok.Token)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
}

func TestLoadOpensMongoOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": pgtest.MustMigratedURL(t), "REDIS_URL": redistest.URL(),
		"MONGODB_URL": mongotest.URL(t), "MONGODB_DATABASE": "app_test"}
	e, err := app.Load(context.Background(), "fn", config.MapEnv(env), app.Needs{})
	require.NoError(t, err)
	t.Cleanup(e.DB.Close)
	assert.Nil(t, e.Mongo, "a function that does not ask opens no MongoDB")

	e, err = app.Load(context.Background(), "fn", config.MapEnv(env), app.Needs{Mongo: true})
	require.NoError(t, err)
	t.Cleanup(e.DB.Close)
	require.NotNil(t, e.Mongo)
	assert.Equal(t, "app_test", e.Mongo.Name())
	t.Cleanup(func() { _ = e.Mongo.Client().Disconnect(context.Background()) })
	require.NoError(t, e.Mongo.Client().Ping(context.Background(), nil))
}
