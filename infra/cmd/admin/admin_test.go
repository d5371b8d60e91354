package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
)

func TestAdminCommand(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.MustMigratedURL(t)
	ctx := context.Background()
	call := func(stdin string, env map[string]string, args ...string) (string, error) {
		env["DATABASE_URL"] = dbURL
		var out, errOut bytes.Buffer
		err := run(ctx, args, config.MapEnv(env), strings.NewReader(stdin), &out, &errOut)
		return out.String(), err
	}

	out, err := call("", map[string]string{passwordEnv: "first admin password"}, "-email", "Ops@Example.com", "-name", "Ops")
	require.NoError(t, err)
	assert.Contains(t, out, "created admin Ops@Example.com")

	db, err := postgres.Open(ctx, dbURL)
	require.NoError(t, err)
	defer db.Close()
	store := postgres.NewUserStore(db)
	u, err := store.FindUserByLogin(ctx, "", "ops@example.com")
	require.NoError(t, err)
	assert.Equal(t, tempwatch.RoleAdmin, u.Role)
	assert.Equal(t, "", u.ClientID)
	assert.NoError(t, auth.CheckPassword(u.PasswordHash, "first admin password"))

	_, err = call("", map[string]string{passwordEnv: "another password!"}, "-email", "OPS@example.com")
	require.Error(t, err, "an existing email is refused without -reset-password")
	assert.Contains(t, err.Error(), "already exists")
	u2, err := store.FindUserByLogin(ctx, "", "ops@example.com")
	require.NoError(t, err)
	assert.Equal(t, u.PasswordHash, u2.PasswordHash, "nothing changed")

	out, err = call("new password from stdin\n", map[string]string{}, "-email", "ops@example.com", "-reset-password")
	require.NoError(t, err)
	assert.Contains(t, out, "reset the password")
	u2, err = store.FindUserByLogin(ctx, "", "ops@example.com")
	require.NoError(t, err)
	assert.NoError(t, auth.CheckPassword(u2.PasswordHash, "new password from stdin"))

	tests := []struct {
		name, stdin string
		env         map[string]string
		args        []string
		want        string
	}{
		{"no email", "", map[string]string{passwordEnv: "long enough password"}, nil, "-email is required"},
		{"short password", "", map[string]string{passwordEnv: "short"}, []string{"-email", "a@example.com"}, "at least 12"},
		{"no password", "", map[string]string{}, []string{"-email", "a@example.com"}, passwordEnv},
		{"bad email", "", map[string]string{passwordEnv: "long enough password"}, []string{"-email", "nope"}, "email"},
		{"password flag does not exist", "", map[string]string{}, []string{"-email", "a@example.com", "-password", "x"}, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call(tt.stdin, tt.env, tt.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
