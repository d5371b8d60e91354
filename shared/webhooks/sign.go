package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The headers of every delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of
	// "<t>.<body>" keyed with the webhook's secret>", as Stripe signs.
	SignatureHeader = "Tempwatch-Signature"
	// EventHeader carries the event's type, such as alarm.opened.
	EventHeader = "Tempwatch-Event"
	// DeliveryHeader carries the delivery's id: the same on every retry of
	// one event to one webhook, so a receiver can drop what it already has.
	DeliveryHeader = "Tempwatch-Delivery"
)

// DefaultTolerance is the replay window receivers are advised to keep: a
// signature older (or newer) than this is refused.
const DefaultTolerance = 5 * time.Minute

// secretPrefix marks webhook secrets, so a leaked one is recognised.
const secretPrefix = "whsec_"

// NewSecret returns a fresh webhook secret: 32 random bytes, base64url.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return secretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Sign returns the SignatureHeader value of body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrNoSignature  = errors.New("webhooks: no valid t= and v1= in the signature header")
	ErrBadSignature = errors.New("webhooks: no v1 signature matches the body")
	ErrStale        = errors.New("webhooks: the signature's timestamp is outside the tolerance")
)

// Verify checks header (SignatureHeader's value) against body and secret,
// as a receiver should: one v1 must match (compared in constant time), and
// its timestamp must be within tolerance of now, so a captured request
// cannot be replayed later.
func Verify(header, secret string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		ok = hmac.Equal(s, want) || ok
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}
