package session

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Device tokens, after OWASP's "Slow Down Online Guessing Attacks with
// Device Cookies": a successful login hands the client a token naming the
// account it logged into; a later login that presents it for the same
// account is a trusted client, throttled on a budget of its own, so an
// attacker's failures on the account or from the address cannot lock it out.
//
//	twd1.<kid>.<account>.<expires, unix s>.<nonce, 32 hex>.<HMAC-SHA256, base64url>
//
// account is the account's counter name (loginAccount: a hash of its id);
// the MAC covers everything before it, under a key derived from the auth
// function's token signing key kid (HMAC rather than a table: no new secret
// to deploy and no database round trip before the limits are checked; a
// signing key retired from JWT_SIGNING_KEYS takes its device tokens with
// it, which costs their holders only the untrusted budget). Only the auth
// function holds signing keys, so no other function can mint one.

// DeviceTokenTTL is how long a device token is honoured after its login.
const DeviceTokenTTL = 30 * 24 * time.Hour

const deviceTokenVersion = "twd1"

// deviceKey is the HMAC key of device tokens under signing key priv.
func deviceKey(priv ed25519.PrivateKey) []byte {
	sum := sha256.Sum256(append([]byte("tempwatch device token v1\x00"), priv.Seed()...))
	return sum[:]
}

// newDeviceToken returns a device token for account, signed with the active
// signing key; "" if the handler holds none.
func (h *Handler) newDeviceToken(account string, now time.Time) string {
	priv, ok := h.JWT.SigningKeys[h.JWT.ActiveKID]
	if !ok {
		return ""
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails
	body := strings.Join([]string{deviceTokenVersion, h.JWT.ActiveKID, account,
		strconv.FormatInt(now.Add(DeviceTokenTTL).Unix(), 10), hex.EncodeToString(nonce)}, ".")
	return body + "." + deviceMAC(priv, body)
}

func deviceMAC(priv ed25519.PrivateKey, body string) string {
	m := hmac.New(sha256.New, deviceKey(priv))
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// trustedDevice returns the nonce of token when it is a genuine, unexpired
// device token for account; ok is false for anything else, which is simply
// an untrusted client (never an error: the token is the client's claim).
func (h *Handler) trustedDevice(token, account string, now time.Time) (nonce string, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 6 || parts[0] != deviceTokenVersion || parts[2] != account {
		return "", false
	}
	priv, found := h.JWT.SigningKeys[parts[1]]
	if !found {
		return "", false
	}
	body := strings.Join(parts[:5], ".")
	if !hmac.Equal([]byte(deviceMAC(priv, body)), []byte(parts[5])) {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || now.Unix() >= exp {
		return "", false
	}
	return parts[4], true
}
