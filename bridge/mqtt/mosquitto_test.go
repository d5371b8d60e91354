package mqtt_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/mqtt"
	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
)

const topic = "tempwatch/acme/sensors/dev-1/readings"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustPublish(t *testing.T, url string, payloads ...[]byte) {
	t.Helper()
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("publisher"))
	require.True(t, pub.Connect().WaitTimeout(5*time.Second))
	defer pub.Disconnect(100)
	for _, p := range payloads {
		tok := pub.Publish(topic, 1, false, p)
		require.True(t, tok.WaitTimeout(20*time.Second))
		require.NoError(t, tok.Error())
	}
}

func receive(t *testing.T, got <-chan mqtt.Message, n int) []mqtt.Message {
	t.Helper()
	var out []mqtt.Message
	for len(out) < n {
		select {
		case m := <-got:
			out = append(out, m)
		case <-time.After(20 * time.Second):
			t.Fatalf("received %d of %d messages", len(out), n)
		}
	}
	return out
}

// A message over MaxPayload reaches the handler as its head and its size,
// and the stream goes on behind it.
func TestSubscribeHandsOnTheHeadOfALargeMessage(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	got := make(chan mqtt.Message, 10)
	sub, err := mqtt.Subscribe(mqtt.Options{URL: broker.URL, ClientID: "subscriber", Topic: "tempwatch/+/sensors/+/readings",
		MaxPayload: 64 << 10, HeadBytes: 1 << 10, Log: quiet()}, func(m mqtt.Message) { got <- m })
	require.NoError(t, err)
	defer sub.Close(time.Second)

	big := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
	mustPublish(t, broker.URL, big, big[:64<<10], []byte("small"))
	ms := receive(t, got, 3)
	assert.Equal(t, big[:1<<10], ms[0].Payload)
	assert.Equal(t, 10<<20, ms[0].Size)
	assert.NotZero(t, ms[0].Ack.PacketID(), "acknowledged as any other")
	assert.Equal(t, big[:64<<10], ms[1].Payload, "at the limit: whole")
	assert.Equal(t, 64<<10, ms[1].Size)
	assert.Equal(t, []byte("small"), ms[2].Payload)
	assert.Equal(t, 5, ms[2].Size)
}

func TestSubscribeOverTLS(t *testing.T) {
	broker := mosquittotest.MustStartTLS(t)
	port, roots := broker.TLSPort, broker.Roots

	got := make(chan mqtt.Message, 1)
	// No ServerName: it is taken from the URL's host.
	sub, err := mqtt.Subscribe(mqtt.Options{URL: "ssl://localhost:" + port, ClientID: "tls", Topic: topic, Log: quiet(),
		TLSConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}, func(m mqtt.Message) { got <- m })
	require.NoError(t, err)
	defer sub.Close(time.Second)
	mustPublish(t, broker.URL, []byte("over tls")) // on the plain listener
	m := receive(t, got, 1)[0]
	assert.Equal(t, "over tls", string(m.Payload))
	mqtt.AckAll([]mqtt.Ack{m.Ack})

	_, err = mqtt.Subscribe(mqtt.Options{URL: "ssl://localhost:" + port, ClientID: "untrusting", Topic: topic, Log: quiet(),
		ConnectTimeout: 5 * time.Second, ReconnectDelay: 100 * time.Millisecond}, func(mqtt.Message) {})
	require.Error(t, err, "a broker certificate the system does not trust")
	// 5 s, not 1: on a loaded machine the first handshake alone can take a
	// second, and the error then has no attempt's failure to name.
	assert.Contains(t, err.Error(), "no subscription within 5s; last error: mqtt dial ssl://localhost:"+port+": tls: failed to verify certificate")
}
