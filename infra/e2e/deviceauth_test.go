package e2e_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/e2e"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// rotationBound is how long a rotated or deleted key may still connect: the
// in-process lifetime of the broker's ingest.DeviceCache entries (30 s by
// default, as for HTTP ingest; shorter here to keep the test short).
const rotationBound = 5 * time.Second

// TestDevicesProveWhoTheyAre runs the broker's decisions against the real
// key store (PostgreSQL, Redis) and the real path to PostgreSQL: a refused
// publish stores nothing, a rotated key stops connecting within the bound.
func TestDevicesProveWhoTheyAre(t *testing.T) {
	w := mustWorldWith(t, e2e.Options{DeviceCacheTTL: rotationBound})
	ctx := context.Background()
	b, err := w.h.StartBridge(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = b.Stop() }()

	for _, cred := range [][3]string{
		{"anon", "", ""},
		{"acme/dev-1", "acme/dev-1", tempwatch.DeviceKeyPrefix + "guess"},
		{"acme/dev-1", "acme/dev-1", w.keys["acme/dev-2"]},
		{"acme/dev-1", "acme/dev-1", w.keys["globex/dev-1"]},
		{"tempwatch-bridge-e2e", "tempwatch-bridge", "guess-the-bridge-password"},
		{"tempwatch-bridge-e2e", "acme/dev-1", w.keys["acme/dev-1"]},
	} {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(w.h.Broker.URL).SetClientID(cred[0]).
			SetUsername(cred[1]).SetPassword(cred[2]).SetAutoReconnect(false))
		tok := c.Connect()
		require.True(t, tok.WaitTimeout(10*time.Second))
		assert.Error(t, tok.Error(), "CONNECT as client id %q, username %q must be refused", cred[0], cred[1])
	}

	// A connection that never sends its CONNECT is closed, not held for
	// good. (The broker is its own process here: mochi races with itself
	// under the race detector when it closes while such a connection is
	// being set up.)
	silent, err := net.Dial("tcp", w.h.Broker.Addr)
	require.NoError(t, err)
	defer silent.Close()
	require.NoError(t, silent.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err = silent.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the broker closes a silent connection (a timeout here means it held it)")
	// A packet over the size cap ends the connection as soon as its header
	// announces it: the broker neither reads nor reserves the rest.
	huge, err := net.Dial("tcp", w.h.Broker.Addr)
	require.NoError(t, err)
	defer huge.Close()
	_, err = huge.Write([]byte{0x10, 0xff, 0xff, 0xff, 0x7f}) // CONNECT, remaining length 268435455
	require.NoError(t, err)
	require.NoError(t, huge.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err = io.ReadAll(huge)
	var timeout net.Error
	require.False(t, errors.As(err, &timeout) && timeout.Timeout(), "the broker kept reading a 256 MiB CONNECT")

	// acme/dev-1 tries other devices' topics (its own tenant's and
	// another's): each attempt costs it the connection and stores nothing.
	for _, topic := range []string{"tempwatch/acme/sensors/dev-2/readings", "tempwatch/globex/sensors/dev-1/readings"} {
		lost := make(chan struct{})
		c := paho.NewClient(paho.NewClientOptions().AddBroker(w.h.Broker.URL).SetClientID("acme/dev-1").
			SetUsername("acme/dev-1").SetPassword(w.keys["acme/dev-1"]).SetAutoReconnect(false).
			SetConnectionLostHandler(func(paho.Client, error) { close(lost) }))
		tok := c.Connect()
		require.True(t, tok.WaitTimeout(10*time.Second))
		require.NoError(t, tok.Error())
		_ = c.Publish(topic, 1, false, `{"value":99}`) // refused: the connection ends
		select {
		case <-lost:
		case <-time.After(10 * time.Second):
			t.Fatalf("publishing to %s as acme/dev-1 was not refused", topic)
		}
	}
	// The bridge kept its session: a good reading published after them is
	// stored, and it is the only row.
	pub, err := w.h.NewPublisher(map[string]string{"globex/dev-3": w.keys["globex/dev-3"]})
	require.NoError(t, err)
	defer pub.Close()
	good := []e2e.Reading{{Client: "globex", Device: "dev-3", Value: 4.5, At: time.Now().UTC().Truncate(time.Millisecond).Add(-time.Minute)}}
	require.NoError(t, pub.Publish(good))
	w.waitRows(t, 1, 30*time.Second)
	w.assertStored(t, good)

	t.Run("a rotated key stops connecting within the bound", func(t *testing.T) {
		const user = "acme/dev-3"
		old := w.keys[user]
		c, err := w.h.ConnectDevice(user, old) // the broker has the key cached now
		require.NoError(t, err)
		cached := time.Now()
		c.Disconnect(100)
		fresh := tempwatch.DeviceKeyPrefix + "e2e-rotated"
		_, err = w.db.Exec(ctx, `UPDATE sensors SET device_key_hash = $1 WHERE id = $2`, tempwatch.HashDeviceKey(fresh), w.sensors[user])
		require.NoError(t, err)
		forgetDevice(t, w.h.RedisPrefix, w.sensors[user]) // as the sensors function does on rotate-key

		c, err = w.h.ConnectDevice(user, fresh)
		require.NoError(t, err, "the new key works at once")
		c.Disconnect(100)
		require.Eventually(t, func() bool {
			c := paho.NewClient(paho.NewClientOptions().AddBroker(w.h.Broker.URL).SetClientID(user).
				SetUsername(user).SetPassword(old).SetAutoReconnect(false))
			tok := c.Connect()
			tok.WaitTimeout(10 * time.Second)
			if tok.Error() == nil {
				c.Disconnect(50)
				return false
			}
			return true
		}, 3*rotationBound, 100*time.Millisecond, "the old key must be refused")
		// Refused no later than the cached entry's lifetime, plus the poll
		// and a loaded machine's scheduling.
		t.Logf("old key refused %s after it was cached", time.Since(cached).Round(100*time.Millisecond))
		assert.LessOrEqual(t, time.Since(cached), rotationBound+2*time.Second)
	})
}

// forgetDevice drops the Redis lookups of the sensor's device.
func forgetDevice(t *testing.T, prefix, sensorID string) {
	t.Helper()
	rc, err := redis.Open("redis://127.0.0.1:6379/0", redis.Options{Prefix: prefix})
	require.NoError(t, err)
	defer rc.Close()
	redis.NewSensorCaches(rc, nil).ForgetDevices(context.Background(), sensorID)
	assert.Empty(t, rc.Degraded(), "the forget reached Redis")
}
