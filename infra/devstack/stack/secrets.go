package stack

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// generatedSecrets are the secrets functions need that a development
// machine has no reason to keep: each one the configuration leaves unset
// gets a random value for this run, as a missing server gets an embedded
// one. MQTT_BROKER_SECRET is what the broker sends the mqttauth function;
// MQTT_BRIDGE_PASSWORD is the bridge's credential.
var generatedSecrets = []string{"MQTT_BROKER_SECRET", "MQTT_BRIDGE_PASSWORD"}

// ensureSecrets fills every unset generated secret of env.
func ensureSecrets(env map[string]string) error {
	for _, name := range generatedSecrets {
		if env[name] != "" {
			continue
		}
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("generate %s: %w", name, err)
		}
		env[name] = base64.RawURLEncoding.EncodeToString(b[:])
	}
	return nil
}
