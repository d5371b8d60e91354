package stack

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEnsureSecrets(t *testing.T) {
	env := map[string]string{"MQTT_BRIDGE_PASSWORD": "given-by-the-developer-0123456789"}
	require.NoError(t, ensureSecrets(env))
	assert.Equal(t, "given-by-the-developer-0123456789", env["MQTT_BRIDGE_PASSWORD"], "a configured secret is kept")
	assert.GreaterOrEqual(t, len(env["MQTT_BROKER_SECRET"]), 32, "an unset one is generated, long enough for the functions' checks")

	other := map[string]string{}
	require.NoError(t, ensureSecrets(other))
	assert.NotEqual(t, env["MQTT_BROKER_SECRET"], other["MQTT_BROKER_SECRET"], "each run gets its own")
}
