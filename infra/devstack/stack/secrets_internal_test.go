package stack

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
)

func TestEnsureSecrets(t *testing.T) {
	env := map[string]string{"MQTT_BRIDGE_PASSWORD": "given-by-the-developer-0123456789"}
	require.NoError(t, ensureSecrets(env))
	assert.Equal(t, "given-by-the-developer-0123456789", env["MQTT_BRIDGE_PASSWORD"], "a configured secret is kept")
	assert.GreaterOrEqual(t, len(env["MQTT_BROKER_SECRET"]), 32, "an unset one is generated, long enough for the functions' checks")

	other := map[string]string{}
	require.NoError(t, ensureSecrets(other))
	assert.NotEqual(t, env["MQTT_BROKER_SECRET"], other["MQTT_BROKER_SECRET"], "each run gets its own")
	assert.NotEqual(t, env["JWT_SIGNING_KEYS"], other["JWT_SIGNING_KEYS"], "each run gets its own token key")
}

// The generated or given signing keys and the public keys devstack hands the
// verifiers are one pair: a token the auth function signs verifies.
func TestEnsureTokenKeys(t *testing.T) {
	signing, public := auth.NewKeyPair("mine")
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"none given", map[string]string{}},
		{"signing keys given", map[string]string{"JWT_SIGNING_KEYS": signing}},
		{"both given", map[string]string{"JWT_SIGNING_KEYS": signing, "JWT_PUBLIC_KEYS": public}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, ensureSecrets(tt.env))
			r := config.NewReader(config.MapEnv(tt.env))
			signer, verifier := auth.LoadJWTSigner(r), auth.LoadJWTVerifier(r)
			require.NoError(t, r.Err())
			assert.Equal(t, signer.PublicKeysValue(), verifier.PublicKeysValue())
		})
	}
	assert.ErrorContains(t, ensureSecrets(map[string]string{"JWT_PUBLIC_KEYS": public}), "JWT_PUBLIC_KEYS is set but JWT_SIGNING_KEYS is not")
	err := ensureSecrets(map[string]string{"JWT_SIGNING_KEYS": "mine:c2hvcnQ="})
	assert.ErrorContains(t, err, "JWT_SIGNING_KEYS")
}
