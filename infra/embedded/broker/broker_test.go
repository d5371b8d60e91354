package broker_test

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/embedded/broker"
)

func mustConnect(tb testing.TB, url, id string, clean bool) paho.Client {
	tb.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetCleanSession(clean).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	c := paho.NewClient(opts)
	tok := c.Connect()
	require.True(tb, tok.WaitTimeout(5*time.Second), "connect timed out")
	require.NoError(tb, tok.Error())
	tb.Cleanup(func() { c.Disconnect(100) })
	return c
}

func TestBrokerPubSubQoS1(t *testing.T) {
	url, stop, err := broker.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer stop()
	require.Regexp(t, `^tcp://127\.0\.0\.1:\d+$`, url)

	got := make(chan paho.Message, 10)
	sub := mustConnect(t, url, "sub", true)
	tok := sub.Subscribe("tempwatch/+/sensors/+/readings", 1, func(_ paho.Client, m paho.Message) { got <- m })
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())

	pub := mustConnect(t, url, "pub", true)
	ptok := pub.Publish("tempwatch/acme/sensors/dev-1/readings", 1, false, []byte(`{"temperature":21.5}`))
	require.True(t, ptok.WaitTimeout(5*time.Second))
	require.NoError(t, ptok.Error())

	select {
	case m := <-got:
		assert.Equal(t, "tempwatch/acme/sensors/dev-1/readings", m.Topic())
		assert.Equal(t, byte(1), m.Qos())
		assert.JSONEq(t, `{"temperature":21.5}`, string(m.Payload()))
	case <-time.After(5 * time.Second):
		t.Fatal("message not delivered within 5s")
	}
}

func TestBrokerKeepsPersistentSessionQoS1(t *testing.T) {
	url, stop, err := broker.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer stop()

	// Subscribe with a persistent session, then go away. It never acks: a
	// message that still reaches it while it leaves must come again.
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("bridge").SetCleanSession(false).
		SetAutoReconnect(false).SetAutoAckDisabled(true))
	require.NoError(t, waitTok(sub.Connect()))
	require.NoError(t, waitTok(sub.Subscribe("t/#", 1, nil)))
	sub.Disconnect(100)

	pub := mustConnect(t, url, "pub", true)
	require.NoError(t, waitTok(pub.Publish("t/1", 1, false, []byte("queued"))))

	got := make(chan string, 1)
	opts := paho.NewClientOptions().AddBroker(url).SetClientID("bridge").SetCleanSession(false).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) })
	again := paho.NewClient(opts)
	require.NoError(t, waitTok(again.Connect()))
	defer again.Disconnect(100)
	select {
	case p := <-got:
		assert.Equal(t, "queued", p)
	case <-time.After(5 * time.Second):
		t.Fatal("queued QoS1 message not delivered after reconnect")
	}
}

func TestStopClosesListener(t *testing.T) {
	url, stop, err := broker.Start("127.0.0.1:0")
	require.NoError(t, err)
	stop()
	stop()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetConnectTimeout(time.Second).SetAutoReconnect(false))
	assert.Error(t, waitTok(c.Connect()))
}

func waitTok(tok paho.Token) error {
	if !tok.WaitTimeout(5 * time.Second) {
		return assert.AnError
	}
	return tok.Error()
}
