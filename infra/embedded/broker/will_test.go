package broker_test

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/deviceauth"
)

// endAbnormally makes the broker end dev's connection without a DISCONNECT
// from it (a refused PUBLISH), which is when a will is sent.
func endAbnormally(t *testing.T, dev paho.Client, lost chan struct{}) {
	t.Helper()
	_ = dev.Publish("not/a/readings/topic", 1, false, []byte("x"))
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the broker kept the connection")
	}
}

// A will is a PUBLISH the broker makes for the client later; mochi does not
// ask OnACLCheck for it. A will on another device's readings topic (its own
// tenant's, another tenant's) or anywhere else must be refused at CONNECT,
// or one device's key writes another device's readings.
func TestWillOnAnotherTopicIsRefused(t *testing.T) {
	url := mustStart(t)
	_, got := mustBridge(t, url, "tempwatch-bridge", true)
	user := deviceauth.Username(a1.Ref())
	for _, topic := range []string{a2.Ref().Topic(), b1.Ref().Topic(), "$SYS/x", "tempwatch/x"} {
		c := paho.NewClient(options(url, user, user, keyA1).SetWill(topic, `{"value":42}`, 1, false))
		require.Error(t, waitTok(c.Connect()), "CONNECT as %s with a will on %s must be refused", user, topic)
	}
	// A will on its own topic is a PUBLISH it may make: sent on an abnormal end.
	lost := make(chan struct{}, 1)
	dev := mustConnect(t, options(url, user, user, keyA1).SetWill(a1.Ref().Topic(), `{"value":7}`, 1, false).
		SetConnectionLostHandler(func(paho.Client, error) { lost <- struct{}{} }))
	endAbnormally(t, dev, lost)
	m := receive(t, got)
	assert.Equal(t, a1.Ref().Topic(), m.Topic())
	assert.Equal(t, `{"value":7}`, string(m.Payload()))
	select {
	case m := <-got:
		t.Fatalf("the bridge got a will on %s", m.Topic())
	case <-time.After(300 * time.Millisecond):
	}
}

// Retained messages would be replayed to the bridge each time it
// subscribes (ingest stores a timestamp-less one as a new reading each
// time), so the broker keeps none.
func TestNoRetainedMessages(t *testing.T) {
	url := mustStart(t)
	user := deviceauth.Username(a1.Ref())
	// mochi acknowledges a QoS 1 PUBLISH before it routes it: a subscriber
	// there before it tells when it has been routed, so the later one
	// below cannot get it live.
	_, early := mustBridge(t, url, "tempwatch-bridge-early", true)
	dev := mustDevice(t, url, a1, keyA1)
	require.NoError(t, waitTok(dev.Publish(a1.Ref().Topic(), 1, true, []byte(`{"value":21}`))))
	assert.JSONEq(t, `{"value":21}`, string(receive(t, early).Payload()))
	// mochi refuses a retained will ("retain not supported", 0x9A, a code
	// MQTT 3.1.1 lacks, so paho may take the CONNACK for a success); either
	// way nothing of it may be retained.
	c := paho.NewClient(options(url, user, user, keyA1).SetWill(a1.Ref().Topic(), `{"value":7}`, 1, true))
	_ = waitTok(c.Connect())
	c.Disconnect(0)

	_, got := mustBridge(t, url, "tempwatch-bridge-later", true)
	select {
	case m := <-got:
		t.Fatalf("a bridge subscribing later got a retained message on %s: %s", m.Topic(), m.Payload())
	case <-time.After(500 * time.Millisecond):
	}
}
