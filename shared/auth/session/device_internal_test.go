package session

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// A device token is honoured for DeviceTokenTTL, for its account, under a
// signing key the handler still holds.
func TestDeviceTokenLifetimeAndKeys(t *testing.T) {
	t.Parallel()
	signer := func(kid string) auth.JWTConfig {
		pair, _ := auth.NewKeyPair(kid)
		r := config.NewReader(config.MapEnv(map[string]string{"JWT_SIGNING_KEYS": pair}))
		cfg := auth.LoadJWTSigner(r)
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	h := &Handler{Deps: Deps{JWT: signer("k1")}}
	now := time.Now()
	account := userAccount(&tempwatch.User{ID: "a"})
	token := h.newDeviceToken(account, now)

	_, ok := h.trustedDevice(token, account, now.Add(DeviceTokenTTL-time.Minute))
	assert.True(t, ok, "within its lifetime")
	_, ok = h.trustedDevice(token, account, now.Add(DeviceTokenTTL+time.Second))
	assert.False(t, ok, "expired")
	_, ok = h.trustedDevice(token, userAccount(&tempwatch.User{ID: "b"}), now)
	assert.False(t, ok, "another account")
	other := &Handler{Deps: Deps{JWT: signer("k1")}}
	_, ok = other.trustedDevice(token, account, now)
	assert.False(t, ok, "another key of the same kid")
}
