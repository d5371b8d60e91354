package session_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth/session"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func loginWithDevice(email, pw, device string) string {
	b, _ := json.Marshal(map[string]string{"email": email, "password": pw, "device_token": device})
	return string(b)
}

// deviceToken logs email in and returns the device token the login issued.
func (e *env) deviceToken(t *testing.T, email string) string {
	t.Helper()
	res := e.do(t, "POST", "/auth/login", "", login(email, password))
	require.Equal(t, http.StatusOK, res.status, res.raw)
	dt, _ := res.body["device_token"].(string)
	require.NotEmpty(t, dt, "a login issues a device token")
	return dt
}

var attackLimits = session.Limits{PerAccount: 3, PerAddress: 4, PerDevice: 2, Window: time.Minute}

// An attacker hammering an account from the owner's address locks out the
// untrusted clients of the account and of the address, while the owner's
// device, holding the token of an earlier login, still gets in.
func TestDeviceTokenSurvivesAnAttack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, attackLimits)
	e.mustUser(t, "owner@example.com", tempwatch.RoleAdmin, "")
	device := e.deviceToken(t, "owner@example.com")

	for i := range 3 {
		res := e.do(t, "POST", "/auth/login", "", login("owner@example.com", "guess number "+strconv.Itoa(i)))
		require.Equal(t, http.StatusUnauthorized, res.status, res.raw)
	}
	require.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/login", "", login("spray@example.com", "guess")).status)
	res := e.do(t, "POST", "/auth/login", "", login("OWNER@example.com", password))
	assert.Equal(t, http.StatusTooManyRequests, res.status, "an untrusted client is locked, right password or not: %s", res.raw)
	assert.NotEmpty(t, res.header.Get("Retry-After"))
	e.mustUser(t, "neighbour@example.com", tempwatch.RoleAdmin, "")
	assert.Equal(t, http.StatusTooManyRequests, e.do(t, "POST", "/auth/login", "", login("neighbour@example.com", password)).status,
		"the address is over its limit for untrusted clients")

	res = e.do(t, "POST", "/auth/login", "", loginWithDevice("owner@example.com", password, device))
	require.Equal(t, http.StatusOK, res.status, "the owner's device is not locked by the attack: %s", res.raw)
	assert.NotEmpty(t, res.body["access_token"])
	assert.NotEmpty(t, res.body["device_token"], "every login renews the device token")
}

// A device token counts for its own account only, and a tampered one for none.
func TestDeviceTokenCannotBeForgedOrMoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t, attackLimits)
	e.mustUser(t, "victim@example.com", tempwatch.RoleAdmin, "")
	e.mustUser(t, "attacker@example.com", tempwatch.RoleAdmin, "")
	own := e.deviceToken(t, "attacker@example.com")
	victims := e.deviceToken(t, "victim@example.com")
	for range 3 {
		require.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/login", "", login("victim@example.com", "wrong password!")).status)
	}
	parts := strings.Split(victims, ".")
	tampered := strings.Join(append(parts[:5:5], strings.Repeat("A", len(parts[5]))), ".")
	expiryMoved := strings.Join([]string{parts[0], parts[1], parts[2], "99999999999", parts[4], parts[5]}, ".")
	for name, token := range map[string]string{
		"another account's": own, "a forged MAC": tampered, "a changed expiry": expiryMoved,
		"garbage": "twd1.x.y.z.w.v", "empty": "",
	} {
		res := e.do(t, "POST", "/auth/login", "", loginWithDevice("victim@example.com", password, token))
		assert.Equal(t, http.StatusTooManyRequests, res.status, "%s device token is untrusted: %s", name, res.raw)
	}
	assert.Equal(t, http.StatusOK, e.do(t, "POST", "/auth/login", "", loginWithDevice("victim@example.com", password, victims)).status)
}

// A trusted device has a small budget of its own; past it, it is an
// untrusted client, locked while the account is.
func TestDeviceTokenHasItsOwnBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, attackLimits)
	e.mustUser(t, "stolen@example.com", tempwatch.RoleAdmin, "")
	device, laptop := e.deviceToken(t, "stolen@example.com"), e.deviceToken(t, "stolen@example.com")
	for range 2 {
		require.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/login", "", loginWithDevice("stolen@example.com", "wrong password!", device)).status)
	}
	// The device's failures did not count against the account: 2 more
	// untrusted ones leave it one short of its limit of 3.
	for range 2 {
		require.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/login", "", login("stolen@example.com", "wrong password!")).status)
	}
	// The spent device is an untrusted client now: its next failure locks
	// the account, for the device too.
	require.Equal(t, http.StatusUnauthorized, e.do(t, "POST", "/auth/login", "", loginWithDevice("stolen@example.com", "wrong password!", device)).status)
	assert.Equal(t, http.StatusTooManyRequests, e.do(t, "POST", "/auth/login", "", loginWithDevice("stolen@example.com", password, device)).status)
	// The account's other device still gets in.
	assert.Equal(t, http.StatusOK, e.do(t, "POST", "/auth/login", "", loginWithDevice("stolen@example.com", password, laptop)).status)
}
