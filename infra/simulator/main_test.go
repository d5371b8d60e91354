package main

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/devstack/stack/stacktest"
	"github.com/tempwatch/tempwatch/infra/simulator/sim"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// TestRunFromEnvironmentAgainstDevstack is the compose simulator's path
// against devstack: its settings from the environment only, it logs in as
// an admin with a password (the compose admin service makes that admin),
// creates its clients and sensors through the API, and publishes with each
// sensor's key at its rate. A second run finds them and rotates the keys.
func TestRunFromEnvironmentAgainstDevstack(t *testing.T) {
	env := stacktest.Env(t)
	dbURL := env["DATABASE_URL"]
	s, _ := stacktest.MustStart(t, stack.Config{Root: "../..", Instances: 1, Only: []string{"auth", "clients", "sensors"}, Env: env})
	ctx := context.Background()
	db, err := postgres.Open(ctx, dbURL)
	require.NoError(t, err)
	defer db.Close()

	email, password := "simulator-"+auth.NewID()+"@devstack.test", "simulated operator passphrase 2026"
	hash, err := auth.HashPassword(password)
	require.NoError(t, err)
	require.NoError(t, postgres.NewUserStore(db).CreateUser(ctx, &tempwatch.User{Email: email, Name: "Simulator", Role: tempwatch.RoleAdmin, PasswordHash: hash}))

	simEnv := map[string]string{
		"MQTT_URL": s.MQTTURL(), "API_URL": s.APIURL(), "ADMIN_EMAIL": email, "ADMIN_PASSWORD": password,
		"SIMULATOR_CLIENTS": "2", "SIMULATOR_SENSORS": "3", "SIMULATOR_RATE": "30",
		"SIMULATOR_DURATION": "1s", "SIMULATOR_MALFORMED": "0", "SIMULATOR_DUPLICATES": "0",
	}
	cfg, err := sim.LoadConfig(nil, func(k string) string { return simEnv[k] }, io.Discard)
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for round := range 2 {
		n, err := run(ctx, cfg, log)
		require.NoError(t, err, "round %d", round)
		assert.InDelta(t, 30, n, 10, "round %d: about SIMULATOR_RATE × SIMULATOR_DURATION messages", round)
		var clients, sensors int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM clients WHERE slug LIKE 'sim-client-%'`).Scan(&clients))
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM sensors`).Scan(&sensors))
		assert.Equal(t, 2, clients, "round %d: SIMULATOR_CLIENTS clients", round)
		assert.Equal(t, 6, sensors, "round %d: SIMULATOR_SENSORS per client", round)
	}
}
