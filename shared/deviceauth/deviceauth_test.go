package deviceauth_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/deviceauth/deviceauthtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

const (
	keyA       = "twk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	keyB       = "twk_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	bridgePass = "bridge-secret-0123456789abcdef"
)

var (
	devA = tempwatch.Device{SensorID: "s-a", ClientID: "c-acme", ClientSlug: "acme", DeviceID: "cr-1"}
	devB = tempwatch.Device{SensorID: "s-b", ClientID: "c-bolt", ClientSlug: "bolt", DeviceID: "truck.7"}
)

func mustAuthority(tb testing.TB, k deviceauth.KeyLookup) *deviceauth.Authority {
	tb.Helper()
	a, err := deviceauth.New(k, deviceauth.Bridge{Password: bridgePass})
	require.NoError(tb, err)
	return a
}

func TestNewValidatesTheBridgeCredential(t *testing.T) {
	for _, b := range []deviceauth.Bridge{
		{Password: "short"},
		{Password: bridgePass, Username: "a/b"},
		{Password: bridgePass, ClientIDPrefix: "x/"},
	} {
		_, err := deviceauth.New(&deviceauthtest.Keys{}, b)
		assert.Error(t, err, "New(%+v)", b)
	}
}

func TestLoadBridge(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    deviceauth.Bridge
		wantErr string
	}{
		{"defaults", map[string]string{"MQTT_BRIDGE_PASSWORD": bridgePass},
			deviceauth.Bridge{Username: "tempwatch-bridge", Password: bridgePass, ClientIDPrefix: "tempwatch-bridge"}, ""},
		{"all set", map[string]string{"MQTT_BRIDGE_PASSWORD": bridgePass, "MQTT_BRIDGE_USERNAME": "br", "MQTT_BRIDGE_CLIENT_ID_PREFIX": "br-"},
			deviceauth.Bridge{Username: "br", Password: bridgePass, ClientIDPrefix: "br-"}, ""},
		{"no password", map[string]string{}, deviceauth.Bridge{}, "MQTT_BRIDGE_PASSWORD is required"},
		{"short password", map[string]string{"MQTT_BRIDGE_PASSWORD": "short-secret"}, deviceauth.Bridge{}, "MQTT_BRIDGE_PASSWORD must be at least"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := config.NewReader(func(k string) string { return tt.env[k] })
			got := deviceauth.LoadBridge(r)
			if tt.wantErr != "" {
				require.Error(t, r.Err())
				assert.Contains(t, r.Err().Error(), tt.wantErr)
				assert.NotContains(t, r.Err().Error(), "short-secret", "the password is never echoed")
				return
			}
			require.NoError(t, r.Err())
			assert.Equal(t, tt.want, got, "LoadBridge(%v)", tt.env)
		})
	}
}

func TestConnect(t *testing.T) {
	a := mustAuthority(t, &deviceauthtest.Keys{Keys: map[string]tempwatch.Device{keyA: devA, keyB: devB}})
	tests := []struct {
		name, clientID, username, password string
		want                               deviceauth.Identity
		refused                            string // part of the reason; "" = allowed
	}{
		{"device", "acme/cr-1", "acme/cr-1", keyA, deviceauth.Identity{Device: devA}, ""},
		{"device with dots in its id", "bolt/truck.7", "bolt/truck.7", keyB, deviceauth.Identity{Device: devB}, ""},
		{"bridge", "tempwatch-bridge", "tempwatch-bridge", bridgePass, deviceauth.Identity{Bridge: true}, ""},
		{"second bridge", "tempwatch-bridge-2", "tempwatch-bridge", bridgePass, deviceauth.Identity{Bridge: true}, ""},
		{"anonymous", "x", "", "", deviceauth.Identity{}, "anonymous"},
		{"no password", "acme/cr-1", "acme/cr-1", "", deviceauth.Identity{}, "no password"},
		{"wrong key", "acme/cr-1", "acme/cr-1", "twk_wrong", deviceauth.Identity{}, "unknown device key"},
		{"not a key", "acme/cr-1", "acme/cr-1", "hunter2", deviceauth.Identity{}, "not a device key"},
		{"another device's key", "acme/cr-1", "acme/cr-1", keyB, deviceauth.Identity{}, "another device"},
		{"other client id", "sensor-1", "acme/cr-1", keyA, deviceauth.Identity{}, "client id must be its username"},
		{"device taking the bridge's client id", "tempwatch-bridge", "acme/cr-1", keyA, deviceauth.Identity{}, "client id"},
		{"bridge username, wrong password", "tempwatch-bridge", "tempwatch-bridge", bridgePass + "x", deviceauth.Identity{}, "wrong bridge password"},
		{"bridge username, device key", "tempwatch-bridge", "tempwatch-bridge", keyA, deviceauth.Identity{}, "wrong bridge password"},
		{"bridge with another client id", "intruder", "tempwatch-bridge", bridgePass, deviceauth.Identity{}, "must start with"},
		{"username without slash", "cr-1", "cr-1", keyA, deviceauth.Identity{}, "not <client-slug>/<device-id>"},
		{"username with a wildcard", "acme/+", "acme/+", keyA, deviceauth.Identity{}, "not <client-slug>/<device-id>"},
		{"username with three levels", "acme/cr-1/x", "acme/cr-1/x", keyA, deviceauth.Identity{}, "not <client-slug>/<device-id>"},
		{"upper-case slug", "ACME/cr-1", "ACME/cr-1", keyA, deviceauth.Identity{}, "not <client-slug>/<device-id>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Connect(context.Background(), tt.clientID, tt.username, tt.password)
			if tt.refused == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.ErrorIs(t, err, deviceauth.ErrRefused)
			assert.Contains(t, err.Error(), tt.refused)
			if tt.password != "" {
				assert.NotContains(t, err.Error(), tt.password, "Connect's error must not echo the password")
			}
		})
	}
}

func TestConnectStoreFailureIsNotARefusal(t *testing.T) {
	a := mustAuthority(t, &deviceauthtest.Keys{Down: true})
	_, err := a.Connect(context.Background(), "acme/cr-1", "acme/cr-1", keyA)
	require.Error(t, err)
	assert.NotErrorIs(t, err, deviceauth.ErrRefused)
}

func TestAllowed(t *testing.T) {
	a := mustAuthority(t, &deviceauthtest.Keys{})
	const dev, bridge = "acme/cr-1", "tempwatch-bridge"
	own := "tempwatch/acme/sensors/cr-1/readings"
	tests := []struct {
		name             string
		username, client string
		action           deviceauth.Action
		topic            string
		want             bool
	}{
		{"device publishes to its topic", dev, dev, deviceauth.Publish, own, true},
		{"device publishes to another device's topic", dev, dev, deviceauth.Publish, "tempwatch/acme/sensors/cr-2/readings", false},
		{"device publishes to another tenant's topic", dev, dev, deviceauth.Publish, "tempwatch/bolt/sensors/cr-1/readings", false},
		{"device publishes with a wildcard", dev, dev, deviceauth.Publish, "tempwatch/acme/sensors/+/readings", false},
		{"device publishes with a trailing slash", dev, dev, deviceauth.Publish, own + "/", false},
		{"device publishes with an empty level", dev, dev, deviceauth.Publish, "tempwatch/acme//sensors/cr-1/readings", false},
		{"device publishes with ..", dev, dev, deviceauth.Publish, "tempwatch/acme/sensors/cr-1/../cr-2/readings", false},
		{"device publishes to a unicode look-alike", dev, dev, deviceauth.Publish, "tempwatch/acmе/sensors/cr-1/readings", false},
		{"device publishes to a very long topic", dev, dev, deviceauth.Publish, own + strings.Repeat("/x", 40000), false},
		{"device publishes to $SYS", dev, dev, deviceauth.Publish, "$SYS/broker/uptime", false},
		{"device with another client id", dev, "other", deviceauth.Publish, own, false},
		{"device subscribes to its own topic", dev, dev, deviceauth.Subscribe, own, false},
		{"device subscribes to tempwatch/#", dev, dev, deviceauth.Subscribe, "tempwatch/#", false},
		{"device subscribes to #", dev, dev, deviceauth.Subscribe, "#", false},
		{"device subscribes to $SYS/#", dev, dev, deviceauth.Subscribe, "$SYS/#", false},
		{"device subscribes to a shared readings filter", dev, dev, deviceauth.Subscribe, "$share/g/tempwatch/+/sensors/+/readings", false},
		{"bridge subscribes to readings", bridge, "tempwatch-bridge", deviceauth.Subscribe, "tempwatch/+/sensors/+/readings", true},
		{"bridge subscribes shared", bridge, "tempwatch-bridge-1", deviceauth.Subscribe, "$share/ingest/tempwatch/+/sensors/+/readings", true},
		{"bridge subscribes to one tenant", bridge, "tempwatch-bridge", deviceauth.Subscribe, "tempwatch/acme/sensors/+/readings", true},
		{"bridge subscribes to #", bridge, "tempwatch-bridge", deviceauth.Subscribe, "#", false},
		{"bridge subscribes to tempwatch/#", bridge, "tempwatch-bridge", deviceauth.Subscribe, "tempwatch/#", false},
		{"bridge subscribes to $SYS/#", bridge, "tempwatch-bridge", deviceauth.Subscribe, "$SYS/#", false},
		{"bridge subscribes with an empty group", bridge, "tempwatch-bridge", deviceauth.Subscribe, "$share//tempwatch/+/sensors/+/readings", false},
		{"bridge subscribes with a wildcard group", bridge, "tempwatch-bridge", deviceauth.Subscribe, "$share/+/tempwatch/+/sensors/+/readings", false},
		{"bridge subscribes with # for the device", bridge, "tempwatch-bridge", deviceauth.Subscribe, "tempwatch/+/sensors/#", false},
		{"bridge subscribes with a trailing slash", bridge, "tempwatch-bridge", deviceauth.Subscribe, "tempwatch/+/sensors/+/readings/", false},
		{"bridge publishes", bridge, "tempwatch-bridge", deviceauth.Publish, own, false},
		{"bridge username with a foreign client id", bridge, "intruder", deviceauth.Subscribe, "tempwatch/+/sensors/+/readings", false},
		{"unknown username", "root", "root", deviceauth.Subscribe, "tempwatch/+/sensors/+/readings", false},
		{"empty username", "", "", deviceauth.Publish, own, false},
		{"unknown action", dev, dev, deviceauth.Action("all"), own, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := a.Allowed(tt.username, tt.client, tt.action, tt.topic)
			assert.Equal(t, tt.want, got, "Allowed(%q, %q, %s, %.80q)", tt.username, tt.client, tt.action, tt.topic)
		})
	}
}

func TestLogSafe(t *testing.T) {
	long := strings.Repeat("a", 199) + "é" + strings.Repeat("b", 50) // é straddles the cut
	tests := []struct {
		name, in, want string
	}{
		{"short", "acme/cr-1", "acme/cr-1"},
		{"a device key", keyA, "twk_…(a device key, not logged)"},
		{"long, cut on a rune boundary", long, strings.Repeat("a", 199) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := deviceauth.LogSafe(tt.in)
			assert.Equal(t, tt.want, got, "LogSafe(%q)", tt.in)
			assert.True(t, utf8.ValidString(got), "LogSafe(%q) = %q is valid UTF-8", tt.in, got)
		})
	}
}
