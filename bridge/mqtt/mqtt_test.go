package mqtt

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
)

// receive collects n messages from got, failing after 10 s.
func receive(t *testing.T, got <-chan Message, n int) []Message {
	t.Helper()
	var out []Message
	for len(out) < n {
		select {
		case m := <-got:
			out = append(out, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("received %d of %d messages", len(out), n)
		}
	}
	return out
}

func payloadsOf(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Payload[:min(len(m.Payload), 8)]))
	}
	sort.Strings(out)
	return out
}

// Small QoS 1 messages come through the subscriber's own reader, large ones
// through paho, QoS 0 ones need no ack: AckAll acknowledges both kinds, and
// only what it acknowledged stays away when the session resumes.
func TestSubscribeAcksWhatAckAllAcks(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	opts := Options{URL: broker.URL, ClientID: "subscriber", Topic: "tempwatch/+/sensors/+/readings"}
	got := make(chan Message, 100)
	resubscribe := func() *Subscriber {
		// Mosquitto reads a connection's packets one per loop turn, and a
		// new connection with the same client id takes the session over
		// at once: PUBACKs the old connection sent just before it closed
		// could still be unread, and those messages would come back.
		time.Sleep(300 * time.Millisecond)
		sub, err := Subscribe(opts, func(m Message) { got <- m })
		require.NoError(t, err)
		return sub
	}
	sub, err := Subscribe(opts, func(m Message) { got <- m })
	require.NoError(t, err)

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("publisher"))
	require.True(t, pub.Connect().WaitTimeout(5*time.Second))
	defer pub.Disconnect(100)
	send := func(qos byte, payload []byte) {
		tok := pub.Publish("tempwatch/acme/sensors/dev-1/readings", qos, false, payload)
		require.True(t, tok.WaitTimeout(5*time.Second))
		require.NoError(t, tok.Error())
	}
	large := func(i int) []byte {
		return append(fmt.Appendf(nil, "large-%02d", i), bytes.Repeat([]byte("x"), readBufferSize)...)
	}
	for i := range 30 {
		send(1, fmt.Appendf(nil, "small-%02d", i))
	}
	send(1, large(0))
	send(1, large(1))
	send(0, []byte("qos0-000"))

	var acks []Ack
	keep := []string{"large-01", "small-03", "small-17"}
	for _, m := range receive(t, got, 33) {
		p := string(m.Payload[:8])
		if p == "qos0-000" {
			assert.True(t, m.Ack == Ack{}, "QoS 0: nothing to acknowledge")
		} else {
			assert.True(t, m.Ack.conn != nil, "%s: its PUBACK goes to the connection it came on", p)
		}
		if !slices.Contains(keep, p) {
			acks = append(acks, m.Ack)
		}
	}
	AckAll(acks)
	sub.Close(250 * time.Millisecond)

	sub = resubscribe()
	again := receive(t, got, 3)
	assert.Equal(t, keep, payloadsOf(again), "the unacknowledged come back")
	acks = acks[:0]
	for _, m := range again {
		assert.True(t, m.Dup, "redelivered")
		acks = append(acks, m.Ack)
	}
	select {
	case m := <-got:
		t.Errorf("%q came back though it was acknowledged", m.Payload[:8])
	case <-time.After(300 * time.Millisecond):
	}
	AckAll(acks)
	sub.Close(250 * time.Millisecond)

	sub = resubscribe()
	defer sub.Close(0)
	select {
	case m := <-got:
		t.Errorf("%q came back after its ack", m.Payload[:8])
	case <-time.After(500 * time.Millisecond):
	}
}

func TestAckAllOnAClosedConnectionIsDropped(t *testing.T) {
	raw, _, _ := mustLoopback(t, false)
	c := newBufferedConn(raw, 0, nil)
	require.NoError(t, c.Close())
	AckAll([]Ack{{conn: c, id: 1}, {conn: c, id: 2}, {}}) // no panic, no write
	_, err := c.Write([]byte{0})
	assert.Error(t, err)
}

// A message over MaxPayload reaches the handler as its head and its size,
// with an Ack for the connection it came on, and the stream goes on behind
// it.
func TestSubscribeHandsOnTheHeadOfALargeMessage(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	got := make(chan Message, 10)
	sub, err := Subscribe(Options{URL: broker.URL, ClientID: "subscriber", Topic: "tempwatch/+/sensors/+/readings",
		MaxPayload: 64 << 10, HeadBytes: 1 << 10}, func(m Message) { got <- m })
	require.NoError(t, err)
	defer sub.Close(0)

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("publisher"))
	require.True(t, pub.Connect().WaitTimeout(5*time.Second))
	defer pub.Disconnect(100)
	big := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
	for _, p := range [][]byte{big, big[:64<<10], []byte("small")} {
		tok := pub.Publish("tempwatch/acme/sensors/dev-1/readings", 1, false, p)
		require.True(t, tok.WaitTimeout(10*time.Second))
		require.NoError(t, tok.Error())
	}
	ms := receive(t, got, 3)
	// paho hands on what it reads itself from another goroutine.
	sort.Slice(ms, func(i, j int) bool { return ms[i].Size > ms[j].Size })
	assert.Equal(t, big[:1<<10], ms[0].Payload)
	assert.Equal(t, 10<<20, ms[0].Size)
	assert.True(t, ms[0].Ack.conn != nil, "read by the subscriber itself, acked on its connection")
	assert.Equal(t, big[:64<<10], ms[1].Payload, "at the limit: whole (through paho: larger than the buffer)")
	assert.Equal(t, 64<<10, ms[1].Size)
	assert.Equal(t, []byte("small"), ms[2].Payload)
	assert.Equal(t, 5, ms[2].Size)
}
