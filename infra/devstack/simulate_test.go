package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/devstack/stack/stacktest"
	"github.com/tempwatch/tempwatch/infra/simulator/sim"
	"github.com/tempwatch/tempwatch/shared/postgres"
)

// TestSimulateAgainstDevstack is `make run` then `make simulate`: devstack's
// embedded broker with device authentication, its bridge, the real
// functions; the simulator creates its sensors through the API and logs
// each in with the key it was given. A second setup (sensors existing)
// rotates the keys, and the new keys work.
func TestSimulateAgainstDevstack(t *testing.T) {
	env := stacktest.Env(t)
	dbURL, jwtKeys := env["DATABASE_URL"], env["JWT_SIGNING_KEYS"]
	s, _ := stacktest.MustStart(t, stack.Config{Root: "../..", Instances: 1,
		Only: []string{"clients", "sensors", "ingest"}, Env: env, Bridge: true})
	ctx := context.Background()

	// The functions verify with the public half devstack derived; the test
	// signs as the auth function would.
	api := &sim.API{BaseURL: s.APIURL(), Token: stacktest.MustAdminToken(t, dbURL, jwtKeys)}
	db, err := postgres.Open(ctx, dbURL)
	require.NoError(t, err)
	defer db.Close()

	fleet := sim.Fleet(2, 2, 1)
	published := 0
	for round := range 2 {
		require.NoError(t, api.Setup(ctx, fleet), "setup round %d", round)
		devices, err := sim.ConnectDevices(s.MQTTURL(), fleet)
		require.NoError(t, err, "round %d: every sensor logs in with its key", round)
		n, err := sim.Run(ctx, sim.NewGenerator(fleet, sim.Mix{}, uint64(round+1)), 40, time.Second, devices.Publish)
		devices.Close()
		require.NoError(t, err)
		require.Positive(t, n)
		published += n
		var rows int
		require.Eventually(t, func() bool {
			require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&rows))
			return rows >= published
		}, 60*time.Second, 100*time.Millisecond, "round %d: readings stored", round)
		assert.Equal(t, published, rows, "round %d: one row per published reading", round)
	}
	var sensors int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM sensors`).Scan(&sensors))
	assert.Equal(t, len(fleet), sensors, "the second setup reused the sensors")
}
