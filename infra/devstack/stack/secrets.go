package stack

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
)

// generatedSecrets are the secrets functions need that a development
// machine has no reason to keep: each one the configuration leaves unset
// gets a random value for this run, as a missing server gets an embedded
// one. MQTT_BROKER_SECRET is what the broker sends the mqttauth function;
// MQTT_BRIDGE_PASSWORD is the bridge's credential.
var generatedSecrets = []string{"MQTT_BROKER_SECRET", "MQTT_BRIDGE_PASSWORD"}

// ensureSecrets fills every unset generated secret of env, and the token
// keys: a fresh Ed25519 key when neither JWT_SIGNING_KEYS nor
// JWT_PUBLIC_KEYS is set, the public halves of JWT_SIGNING_KEYS when only
// it is.
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
	return ensureTokenKeys(env)
}

func ensureTokenKeys(env map[string]string) error {
	switch {
	case env["JWT_SIGNING_KEYS"] == "" && env["JWT_PUBLIC_KEYS"] != "":
		return errors.New("JWT_PUBLIC_KEYS is set but JWT_SIGNING_KEYS is not: devstack runs the auth function too, so set both (go run ./infra/cmd/jwtkeys) or neither (a key is generated)")
	case env["JWT_SIGNING_KEYS"] == "":
		env["JWT_SIGNING_KEYS"], env["JWT_PUBLIC_KEYS"] = auth.NewKeyPair("devstack")
	case env["JWT_PUBLIC_KEYS"] == "":
		r := config.NewReader(config.MapEnv(map[string]string{"JWT_SIGNING_KEYS": env["JWT_SIGNING_KEYS"]}))
		cfg := auth.LoadJWTSigner(r)
		if err := r.Err(); err != nil {
			return err
		}
		env["JWT_PUBLIC_KEYS"] = cfg.PublicKeysValue()
	}
	return nil
}
