package broker_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/embedded/broker"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/deviceauth/deviceauthtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

const (
	bridgePass = "test-bridge-password-0123456789"
	keyA1      = "twk_acme-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	keyA2      = "twk_acme-2-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	keyB1      = "twk_bolt-1-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	readings   = "tempwatch/+/sensors/+/readings"
)

var (
	a1 = tempwatch.Device{SensorID: "a1", ClientSlug: "acme", DeviceID: "cr-1"}
	a2 = tempwatch.Device{SensorID: "a2", ClientSlug: "acme", DeviceID: "cr-2"}
	b1 = tempwatch.Device{SensorID: "b1", ClientSlug: "bolt", DeviceID: "cr-1"}
)

func mustStart(tb testing.TB) string {
	tb.Helper()
	auth, err := deviceauth.New(&deviceauthtest.Keys{Keys: map[string]tempwatch.Device{keyA1: a1, keyA2: a2, keyB1: b1}}, deviceauth.Bridge{Password: bridgePass})
	require.NoError(tb, err)
	url, stop, err := broker.Start("127.0.0.1:0", auth)
	require.NoError(tb, err)
	tb.Cleanup(stop)
	require.Regexp(tb, `^tcp://127\.0\.0\.1:\d+$`, url)
	return url
}

func options(url, id, user, pass string) *paho.ClientOptions {
	return paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).SetConnectRetry(false)
}

func connect(url, id, user, pass string) (paho.Client, error) {
	c := paho.NewClient(options(url, id, user, pass))
	return c, waitTok(c.Connect())
}

func mustConnect(tb testing.TB, opts *paho.ClientOptions) paho.Client {
	tb.Helper()
	c := paho.NewClient(opts)
	require.NoError(tb, waitTok(c.Connect()))
	tb.Cleanup(func() { c.Disconnect(100) })
	return c
}

func mustDevice(tb testing.TB, url string, d tempwatch.Device, key string) paho.Client {
	tb.Helper()
	user := deviceauth.Username(d.Ref())
	return mustConnect(tb, options(url, user, user, key))
}

// mustBridge subscribes as the bridge and returns what it receives.
func mustBridge(tb testing.TB, url, id string, clean bool) (paho.Client, chan paho.Message) {
	tb.Helper()
	got := make(chan paho.Message, 100)
	c := mustConnect(tb, options(url, id, deviceauth.DefaultBridgeUsername, bridgePass).SetCleanSession(clean))
	require.NoError(tb, waitTok(c.Subscribe(readings, 1, func(_ paho.Client, m paho.Message) { got <- m })))
	return c, got
}

func TestDevicePublishesToItsTopicAndTheBridgeReceives(t *testing.T) {
	url := mustStart(t)
	_, got := mustBridge(t, url, "tempwatch-bridge", true)
	dev := mustDevice(t, url, a1, keyA1)
	require.NoError(t, waitTok(dev.Publish(a1.Ref().Topic(), 1, false, []byte(`{"value":21.5}`))))
	m := receive(t, got)
	assert.Equal(t, a1.Ref().Topic(), m.Topic())
	assert.Equal(t, byte(1), m.Qos())
	assert.JSONEq(t, `{"value":21.5}`, string(m.Payload()))
}

func TestConnectRefusals(t *testing.T) {
	url := mustStart(t)
	tests := []struct{ name, id, user, pass string }{
		{"anonymous", "anon", "", ""},
		{"username without password", "acme/cr-1", "acme/cr-1", ""},
		{"wrong key", "acme/cr-1", "acme/cr-1", "twk_wrong"},
		{"another device's key", "acme/cr-1", "acme/cr-1", keyA2},
		{"another client id", "sensor-1", "acme/cr-1", keyA1},
		{"bridge username, wrong password", "tempwatch-bridge", "tempwatch-bridge", "guess"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := connect(url, tt.id, tt.user, tt.pass)
			require.Error(t, err, "CONNECT as %+v must be refused", tt)
			assert.False(t, c.IsConnected())
		})
	}
}

// A device publishing to another device's topic is disconnected (MQTT 3.1.1
// has no negative PUBACK) and the bridge never sees the message.
func TestPublishToAnotherDevicesTopicIsRefused(t *testing.T) {
	url := mustStart(t)
	_, got := mustBridge(t, url, "tempwatch-bridge", true)
	for _, topic := range []string{a2.Ref().Topic(), b1.Ref().Topic(), "tempwatch/acme/sensors/+/readings"} {
		lost := make(chan struct{}, 1)
		user := deviceauth.Username(a1.Ref())
		dev := mustConnect(t, options(url, user, user, keyA1).SetConnectionLostHandler(func(paho.Client, error) { lost <- struct{}{} }))
		_ = dev.Publish(topic, 1, false, []byte(`{"value":99}`)) // refused: the connection ends
		select {
		case <-lost:
		case <-time.After(5 * time.Second):
			t.Fatalf("publishing to %q as %s was not refused", topic, user)
		}
	}
	// The next good message is the first the bridge gets.
	dev := mustDevice(t, url, b1, keyB1)
	require.NoError(t, waitTok(dev.Publish(b1.Ref().Topic(), 1, false, []byte(`{"value":4}`))))
	assert.Equal(t, b1.Ref().Topic(), receive(t, got).Topic())
	select {
	case m := <-got:
		t.Fatalf("the bridge got a refused message on %s", m.Topic())
	default:
	}
}

func TestDeviceSubscriptionsAreRefused(t *testing.T) {
	url := mustStart(t)
	dev := mustDevice(t, url, a1, keyA1)
	for _, filter := range []string{"tempwatch/#", "#", "$SYS/#", "$share/g/" + readings, a1.Ref().Topic(), readings} {
		tok := dev.Subscribe(filter, 1, nil)
		require.NoError(t, waitTok(tok), filter)
		assert.Equal(t, map[string]byte{resultKey(filter): 0x80}, tok.(*paho.SubscribeToken).Result(), "SUBACK for %q", filter)
	}
}

func TestBridgeFiltersOutsideReadingsAreRefused(t *testing.T) {
	url := mustStart(t)
	c := mustConnect(t, options(url, "tempwatch-bridge", deviceauth.DefaultBridgeUsername, bridgePass))
	for filter, want := range map[string]byte{"#": 0x80, "$SYS/#": 0x80, "tempwatch/#": 0x80, "$share/ingest/" + readings: 1} {
		tok := c.Subscribe(filter, 1, nil)
		require.NoError(t, waitTok(tok), filter)
		assert.Equal(t, map[string]byte{resultKey(filter): want}, tok.(*paho.SubscribeToken).Result(), "SUBACK for %q", filter)
	}
}

// Someone with the bridge's client id but not its credential is refused
// before the broker would hand them the session; the bridge keeps it and
// its messages.
func TestBridgeClientIDCannotBeTaken(t *testing.T) {
	url := mustStart(t)
	bridge, got := mustBridge(t, url, "tempwatch-bridge", false)
	for _, cred := range [][2]string{{"", ""}, {deviceauth.DefaultBridgeUsername, "guess"}, {"acme/cr-1", keyA1}} {
		_, err := connect(url, "tempwatch-bridge", cred[0], cred[1])
		require.Error(t, err, "taking the bridge's client id as %q", cred[0])
	}
	assert.True(t, bridge.IsConnectionOpen(), "the bridge stays connected")
	dev := mustDevice(t, url, a1, keyA1)
	require.NoError(t, waitTok(dev.Publish(a1.Ref().Topic(), 1, false, []byte(`{"value":3}`))))
	assert.Equal(t, a1.Ref().Topic(), receive(t, got).Topic())
}

func TestBridgeKeepsPersistentSessionQoS1(t *testing.T) {
	url := mustStart(t)
	// Subscribe with a persistent session, then go away. It never acks: a
	// message that still reaches it while it leaves must come again.
	sub := paho.NewClient(options(url, "tempwatch-bridge", deviceauth.DefaultBridgeUsername, bridgePass).
		SetCleanSession(false).SetAutoAckDisabled(true))
	require.NoError(t, waitTok(sub.Connect()))
	require.NoError(t, waitTok(sub.Subscribe(readings, 1, nil)))
	sub.Disconnect(100)

	dev := mustDevice(t, url, a1, keyA1)
	require.NoError(t, waitTok(dev.Publish(a1.Ref().Topic(), 1, false, []byte("queued"))))
	// While the bridge is away, nobody without its credential gets its
	// session (and the message waiting in it).
	_, err := connect(url, "tempwatch-bridge", "acme/cr-1", keyA1)
	require.Error(t, err)
	_, err = connect(url, "tempwatch-bridge", deviceauth.DefaultBridgeUsername, "guess")
	require.Error(t, err)

	got := make(chan paho.Message, 1)
	mustConnect(t, options(url, "tempwatch-bridge", deviceauth.DefaultBridgeUsername, bridgePass).SetCleanSession(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got <- m }))
	assert.Equal(t, "queued", string(receive(t, got).Payload()))
}

// TestBridgeBacklogBeyondMochisDefaultWindowIsKept publishes more messages
// than mochi's default in-flight window per client (8192) to a bridge that
// acks none of them, once while it is connected and once while its
// persistent session is away: none may be dropped.
func TestBridgeBacklogBeyondMochisDefaultWindowIsKept(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 messages take minutes under -race on a loaded machine, so not run with -short (make test-unit)")
	}
	const n = 10_000
	for _, away := range []bool{false, true} {
		t.Run(map[bool]string{false: "connected", true: "session away"}[away], func(t *testing.T) {
			url := mustStart(t)
			var got atomic.Int64
			bridge := options(url, "tempwatch-bridge", deviceauth.DefaultBridgeUsername, bridgePass).
				SetCleanSession(false).SetAutoAckDisabled(true).SetOrderMatters(false).
				SetDefaultPublishHandler(func(paho.Client, paho.Message) { got.Add(1) })
			sub := mustConnect(t, bridge)
			require.NoError(t, waitTok(sub.Subscribe(readings, 1, nil)))
			if away {
				sub.Disconnect(100)
			}
			// One more than n: mochi acks a publish before it routes it, and
			// handles a client's packets in order, so once the last PUBACK
			// is in, the n before it have reached the bridge's session.
			dev := mustDevice(t, url, a1, keyA1)
			toks := make([]paho.Token, n+1)
			for i := range toks {
				toks[i] = dev.Publish(a1.Ref().Topic(), 1, false, []byte(`{"value":1}`))
			}
			for _, tok := range toks {
				require.NoError(t, waitTok(tok))
			}
			if away {
				mustConnect(t, bridge)
			}
			assert.Eventually(t, func() bool { return got.Load() >= n }, 10*time.Second, 10*time.Millisecond)
			assert.GreaterOrEqual(t, got.Load(), int64(n), "every message delivered, unacknowledged")
		})
	}
}

// A publish larger than a full payload with its headers is refused: the
// device is disconnected without a PUBACK and the bridge never sees it. A
// payload at the limit still goes through.
func TestPacketsOverTheLimitAreRefused(t *testing.T) {
	url := mustStart(t)
	_, got := mustBridge(t, url, "tempwatch-bridge", true)
	lost := make(chan struct{}, 1)
	user := deviceauth.Username(a1.Ref())
	dev := mustConnect(t, options(url, user, user, keyA1).SetConnectionLostHandler(func(paho.Client, error) { lost <- struct{}{} }))
	tok := dev.Publish(a1.Ref().Topic(), 1, false, make([]byte, 200<<10))
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("a 200 KiB publish did not end the connection")
	}
	assert.False(t, tok.WaitTimeout(time.Second) && tok.Error() == nil, "a refused publish is never acknowledged")

	full := mustDevice(t, url, a2, keyA2)
	require.NoError(t, waitTok(full.Publish(a2.Ref().Topic(), 1, false, make([]byte, tempwatch.MaxPayloadBytes))))
	m := receive(t, got)
	assert.Equal(t, a2.Ref().Topic(), m.Topic(), "the first message the bridge gets is the one at the limit")
	assert.Len(t, m.Payload(), tempwatch.MaxPayloadBytes)
}

func TestStartNeedsAnAuthority(t *testing.T) {
	_, _, err := broker.Start("127.0.0.1:0", nil)
	assert.Error(t, err)
}

func TestStopClosesListener(t *testing.T) {
	auth, err := deviceauth.New(&deviceauthtest.Keys{}, deviceauth.Bridge{Password: bridgePass})
	require.NoError(t, err)
	url, stop, err := broker.Start("127.0.0.1:0", auth)
	require.NoError(t, err)
	stop()
	stop()
	_, err = connect(url, "tempwatch-bridge", deviceauth.DefaultBridgeUsername, bridgePass)
	assert.Error(t, err)
}

// resultKey is how paho names a filter's SUBACK code: a shared
// subscription by its topic filter alone.
func resultKey(filter string) string {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		_, f, _ := strings.Cut(rest, "/")
		return f
	}
	return filter
}

func receive(tb testing.TB, got chan paho.Message) paho.Message {
	tb.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(5 * time.Second):
		tb.Fatal("message not delivered within 5s")
		return nil
	}
}

func waitTok(tok paho.Token) error {
	if !tok.WaitTimeout(5 * time.Second) {
		return assert.AnError
	}
	return tok.Error()
}
