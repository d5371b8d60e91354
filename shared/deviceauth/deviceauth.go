// Package deviceauth decides who may connect to the MQTT broker and what each
// client may publish and subscribe to. It is the one rule every broker asks:
// EMQX over HTTP (shared/emqx), AWS IoT Core through a custom authorizer
// (shared/awsiot) and devstack's embedded broker through its hooks.
//
// A device logs in with its sensor's device key as the password; its username,
// and the client id it must use, is "<client-slug>/<device-id>" — the name its
// readings topic carries, so every later decision about the connection is a
// function of the username alone. It may publish to its own readings topic
// and nothing else, and may subscribe to nothing.
//
// The bridge logs in with its own username and password and a client id
// starting with its prefix (no device can take one: a device's client id is
// its username, which holds a '/'). It may subscribe to readings topics,
// plainly or as a shared subscription, and may publish nothing.
//
// Everyone else — no username, no password, a wrong or rotated key, a
// client id that does not match — is refused.
package deviceauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Action is what a connected client asks to do with a topic.
type Action string

// The actions a broker asks about.
const (
	Publish   Action = "publish"
	Subscribe Action = "subscribe"
)

// KeyLookup finds the device a device key belongs to (ingest.DeviceCache:
// cached, so a rotated or deleted key stops working within its TTL).
type KeyLookup interface {
	// ByKey returns the device whose key is key, or an ENOTFOUND error.
	ByKey(ctx context.Context, key string) (tempwatch.Device, error)
}

// Bridge is the bridge's credential.
type Bridge struct {
	Username       string // default DefaultBridgeUsername
	Password       string // required, at least MinBridgePasswordLen characters
	ClientIDPrefix string // default DefaultBridgeClientIDPrefix
}

// Defaults and limits of the bridge's credential.
const (
	DefaultBridgeUsername       = "tempwatch-bridge"
	DefaultBridgeClientIDPrefix = "tempwatch-bridge"
	MinBridgePasswordLen        = 24
)

// LoadBridge reads the bridge's credential as every deciding side names it:
// MQTT_BRIDGE_USERNAME, MQTT_BRIDGE_PASSWORD (required, at least
// MinBridgePasswordLen characters, never echoed) and
// MQTT_BRIDGE_CLIENT_ID_PREFIX.
func LoadBridge(r *config.Reader) Bridge {
	return Bridge{
		Username:       r.String("MQTT_BRIDGE_USERNAME", DefaultBridgeUsername),
		Password:       r.Secret("MQTT_BRIDGE_PASSWORD", MinBridgePasswordLen),
		ClientIDPrefix: r.String("MQTT_BRIDGE_CLIENT_ID_PREFIX", DefaultBridgeClientIDPrefix),
	}
}

// Identity is an authenticated client.
type Identity struct {
	Bridge bool
	// Device is the sensor a device client speaks for (zero for the bridge).
	Device tempwatch.Device
}

// ErrRefused is the cause of every refused CONNECT; the wrapping error says
// why, for the broker's log (never echoing a password).
var ErrRefused = errors.New("connection refused")

// Authority makes the decisions.
type Authority struct {
	keys         KeyLookup
	bridgeUser   string
	bridgePrefix string
	bridgeSum    [sha256.Size]byte
}

// New returns an Authority checking device keys with keys and the bridge's
// credential against bridge.
func New(keys KeyLookup, bridge Bridge) (*Authority, error) {
	if bridge.Username == "" {
		bridge.Username = DefaultBridgeUsername
	}
	if bridge.ClientIDPrefix == "" {
		bridge.ClientIDPrefix = DefaultBridgeClientIDPrefix
	}
	switch {
	case len(bridge.Password) < MinBridgePasswordLen:
		return nil, fmt.Errorf("deviceauth: the bridge password must be at least %d characters", MinBridgePasswordLen)
	case strings.Contains(bridge.Username, "/"):
		return nil, errors.New("deviceauth: the bridge username must not contain '/' (device usernames do)")
	case strings.Contains(bridge.ClientIDPrefix, "/"):
		return nil, errors.New("deviceauth: the bridge client id prefix must not contain '/'")
	}
	return &Authority{keys: keys, bridgeUser: bridge.Username, bridgePrefix: bridge.ClientIDPrefix,
		bridgeSum: sha256.Sum256([]byte(bridge.Password))}, nil
}

// Username returns the MQTT username (and client id) of a device.
func Username(ref tempwatch.DeviceRef) string { return ref.String() }

// Connect decides a CONNECT. It returns the client's identity, an error
// wrapping ErrRefused, or another error when the key store failed (the
// broker refuses then too, and the device retries).
func (a *Authority) Connect(ctx context.Context, clientID, username, password string) (Identity, error) {
	switch {
	case username == "":
		return Identity{}, refuse("no username (anonymous connections are refused)")
	case password == "":
		return Identity{}, refuse("no password")
	case username == a.bridgeUser:
		sum := sha256.Sum256([]byte(password))
		if subtle.ConstantTimeCompare(sum[:], a.bridgeSum[:]) != 1 {
			return Identity{}, refuse("wrong bridge password")
		}
		if !strings.HasPrefix(clientID, a.bridgePrefix) {
			return Identity{}, refuse(fmt.Sprintf("the bridge's client id must start with %q", a.bridgePrefix))
		}
		return Identity{Bridge: true}, nil
	}
	ref, ok := parseUsername(username)
	if !ok {
		return Identity{}, refuse("username is not <client-slug>/<device-id>")
	}
	if clientID != username {
		return Identity{}, refuse("a device's client id must be its username")
	}
	if !strings.HasPrefix(password, tempwatch.DeviceKeyPrefix) {
		return Identity{}, refuse("password is not a device key")
	}
	d, err := a.keys.ByKey(ctx, password)
	if err != nil {
		if tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND {
			return Identity{}, refuse("unknown device key")
		}
		return Identity{}, fmt.Errorf("deviceauth: look up device key: %w", err)
	}
	// The key names the device; the username must name the same one, or a
	// device could publish as another with its own key.
	if d.Ref() != ref {
		return Identity{}, refuse("the device key belongs to another device")
	}
	return Identity{Device: d}, nil
}

func refuse(why string) error { return fmt.Errorf("%w: %s", ErrRefused, why) }

// parseUsername reads a device username, as strictly as ParseTopic reads a
// topic.
func parseUsername(u string) (tempwatch.DeviceRef, bool) {
	slug, dev, ok := strings.Cut(u, "/")
	if !ok || !tempwatch.ValidSlug(slug) || !tempwatch.ValidDeviceID(dev) {
		return tempwatch.DeviceRef{}, false
	}
	return tempwatch.DeviceRef{ClientSlug: slug, DeviceID: dev}, true
}

// Allowed decides a PUBLISH or SUBSCRIBE of a client that connected with
// username and clientID (which the broker authenticated with Connect). It
// needs no lookup, so brokers may ask on every packet.
func (a *Authority) Allowed(username, clientID string, action Action, topic string) bool {
	if username == a.bridgeUser {
		return strings.HasPrefix(clientID, a.bridgePrefix) && action == Subscribe && ReadingsFilter(topic)
	}
	ref, ok := parseUsername(username)
	if !ok || clientID != username {
		return false
	}
	return action == Publish && topic == ref.Topic()
}

// ReadingsFilter reports whether filter selects readings topics and nothing
// else: tempwatch/<slug or +>/sensors/<device-id or +>/readings, optionally
// as a shared subscription ($share/<group>/...). A broader filter (#,
// tempwatch/#) is not one: it would also carry whatever else is published
// under tempwatch/.
func ReadingsFilter(filter string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		group, f, ok := strings.Cut(rest, "/")
		if !ok || group == "" || strings.ContainsAny(group, "+#") {
			return false
		}
		filter = f
	}
	parts := strings.Split(filter, "/")
	if len(parts) != 5 || parts[0] != "tempwatch" || parts[2] != "sensors" || parts[4] != "readings" {
		return false
	}
	return (parts[1] == "+" || tempwatch.ValidSlug(parts[1])) && (parts[3] == "+" || tempwatch.ValidDeviceID(parts[3]))
}

// LogSafe makes what a client chose (a username, client id or topic) fit
// for a log line: bounded (a topic can be tens of kilobytes), cut on a
// UTF-8 boundary, and without a device key that a confused device sent as
// its username or client id.
func LogSafe(s string) string {
	const max = 200
	if strings.HasPrefix(s, tempwatch.DeviceKeyPrefix) {
		return tempwatch.DeviceKeyPrefix + "…(a device key, not logged)"
	}
	return tempwatch.Truncate(s, max)
}
