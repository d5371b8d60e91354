// Package mqtttest holds the contract between the bridge's MQTT client
// (bridge/mqtt) and a broker. RunContract runs it against one broker, so
// every broker the bridge is deployed with is held to the same cases: the
// root module runs it against a private Mosquitto, the infra module against
// the embedded mochi-mqtt broker.
//
// Each case waits on what it expects to see, never on time: to show that
// nothing more comes, it publishes a sentinel and reads up to it, since a
// broker sends what a session holds before anything published after the
// subscription.
package mqtttest

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/mqtt"
	"github.com/tempwatch/tempwatch/shared/faultproxy"
)

// Broker says how the contract reaches a broker under test.
type Broker struct {
	// Addr is the broker's plain TCP listener, host:port.
	Addr string
	// Username and Password log the subscriber in; ClientIDPrefix starts
	// each of its client ids.
	Username, Password, ClientIDPrefix string
	// Topic is what the subscriber subscribes to and the publisher
	// publishes to.
	Topic string
	// PublisherID, PublisherUsername and PublisherPassword log in a client
	// that may publish to Topic.
	PublisherID, PublisherUsername, PublisherPassword string
}

// wait bounds every wait for a message, so a broken case fails instead of
// hanging.
const wait = 20 * time.Second

// RunContract runs every case against b, one after the other (they share
// the publisher's client id). Each case has sessions of its own and removes
// them when it ends.
func RunContract(t *testing.T, b Broker) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, *contract)
	}{
		{"QoS 1 only: QoS 0 needs no ack, QoS 2 arrives as QoS 1", testQoS},
		{"a lost connection resumes the persistent session", testResume},
		{"unacknowledged messages come again marked DUP after a reconnect", testRedelivery},
		{"acks of messages from before a reconnect are not sent on the new connection", testStaleAcks},
		{"acks in any order acknowledge exactly those messages", testOutOfOrderAcks},
		{"packet ids reused once acknowledged name new messages", testIDReuse},
		{"a payload at the bridge's limit arrives whole", testLargePayload},
		{"a clean session keeps nothing", testCleanSession},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newContract(t, b))
		})
	}
}

// contract is one case's view of the broker: a publisher, and a fault
// proxy its subscribers connect through.
type contract struct {
	b     Broker
	proxy *faultproxy.Proxy
	pub   paho.Client
	id    string // the case's subscriber client id
	seq   int    // payloads published so far
}

func newContract(t *testing.T, b Broker) *contract {
	c := &contract{b: b, proxy: faultproxy.MustStart(t, b.Addr),
		id: fmt.Sprintf("%s-contract-%d", b.ClientIDPrefix, rand.Uint32())}
	c.pub = paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.Addr).SetClientID(b.PublisherID).
		SetUsername(b.PublisherUsername).SetPassword(b.PublisherPassword).SetAutoReconnect(false))
	require.NoError(t, waitToken(c.pub.Connect()), "publisher connects")
	t.Cleanup(func() {
		c.pub.Disconnect(100)
		c.dropSession(t)
	})
	return c
}

// dropSession ends the case's persistent session on the broker, so it
// collects nothing of later cases.
func (c *contract) dropSession(t *testing.T) {
	cl := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + c.b.Addr).SetClientID(c.id).
		SetUsername(c.b.Username).SetPassword(c.b.Password).SetCleanSession(true).SetAutoReconnect(false))
	if err := waitToken(cl.Connect()); err != nil {
		t.Errorf("drop session %s: %v", c.id, err)
		return
	}
	cl.Disconnect(100)
}

// subscriber is a client under test and what it received.
type subscriber struct {
	*mqtt.Subscriber
	got      chan mqtt.Message
	connects chan bool // session present, per connection
}

// subscribe starts a client through the proxy; it closes when t ends.
func (c *contract) subscribe(t *testing.T, clean bool, tune ...func(*mqtt.Options)) *subscriber {
	t.Helper()
	s := &subscriber{got: make(chan mqtt.Message, 4096), connects: make(chan bool, 16)}
	o := mqtt.Options{URL: "tcp://" + c.proxy.Addr(), ClientID: c.id, Topic: c.b.Topic, CleanSession: clean,
		Username: c.b.Username, Password: c.b.Password, KeepAlive: 10 * time.Second, ConnectTimeout: 10 * time.Second,
		ReconnectDelay: 20 * time.Millisecond, MaxReconnectDelay: 200 * time.Millisecond,
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnConnect: func(present bool) { s.connects <- present }}
	for _, f := range tune {
		f(&o)
	}
	var err error
	s.Subscriber, err = mqtt.Subscribe(o, func(m mqtt.Message) { s.got <- m })
	require.NoError(t, err, "subscribe as %s", c.id)
	t.Cleanup(func() { s.Close(time.Second) })
	return s
}

// publish sends payloads at qos and waits for the broker's PUBACKs.
func (c *contract) publish(t *testing.T, qos byte, payloads ...string) {
	t.Helper()
	toks := make([]paho.Token, len(payloads))
	for i, p := range payloads {
		toks[i] = c.pub.Publish(c.b.Topic, qos, false, p)
	}
	for _, tok := range toks {
		require.NoError(t, waitToken(tok), "publish")
	}
}

// payloads returns n new payloads.
func (c *contract) payloads(n int) []string {
	out := make([]string, n)
	for i := range out {
		c.seq++
		out[i] = fmt.Sprintf("m-%06d", c.seq)
	}
	return out
}

// receive returns the next n messages.
func (s *subscriber) receive(t *testing.T, n int) []mqtt.Message {
	t.Helper()
	out := make([]mqtt.Message, 0, n)
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for len(out) < n {
		select {
		case m := <-s.got:
			out = append(out, m)
		case <-timeout.C:
			t.Fatalf("received %d of %d messages within %s: %q", len(out), n, wait, payloadsOf(out))
		}
	}
	return out
}

// connected waits for the next subscribed connection and returns its
// session-present flag.
func (s *subscriber) connected(t *testing.T) bool {
	t.Helper()
	select {
	case present := <-s.connects:
		return present
	case <-time.After(wait):
		t.Fatalf("no connection within %s", wait)
		return false
	}
}

// onlyThese publishes a sentinel, receives up to it, and checks that what
// came before it is want (in any order); it acknowledges all of them.
func (c *contract) onlyThese(t *testing.T, s *subscriber, want ...string) []mqtt.Message {
	t.Helper()
	before := c.upToSentinel(t, s)
	assert.ElementsMatch(t, want, payloadsOf(before), "what came before a sentinel published after subscribing")
	return before
}

// upToSentinel publishes a sentinel and returns what arrives before it,
// acknowledging everything.
func (c *contract) upToSentinel(t *testing.T, s *subscriber) []mqtt.Message {
	t.Helper()
	sentinel := fmt.Sprintf("sentinel-%d", rand.Uint64())
	c.publish(t, 1, sentinel)
	var before []mqtt.Message
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		select {
		case m := <-s.got:
			mqtt.AckAll([]mqtt.Ack{m.Ack})
			if string(m.Payload) == sentinel {
				return before
			}
			before = append(before, m)
		case <-timeout.C:
			t.Fatalf("the sentinel did not arrive within %s; before it: %q", wait, payloadsOf(before))
			return nil
		}
	}
}

// reconnect cuts the subscriber's connection and lets it reconnect.
func (c *contract) reconnect(t *testing.T, s *subscriber) (sessionPresent bool) {
	t.Helper()
	c.proxy.Cut()
	c.proxy.Restore()
	return s.connected(t)
}

func testQoS(t *testing.T, c *contract) {
	s := c.subscribe(t, false)
	s.connected(t)
	c.publish(t, 0, "qos-0")
	c.publish(t, 1, "qos-1")
	c.publish(t, 2, "qos-2")
	byPayload := map[string]mqtt.Message{}
	for _, m := range s.receive(t, 3) {
		byPayload[string(m.Payload)] = m
	}
	require.Len(t, byPayload, 3)
	assert.Zero(t, byPayload["qos-0"].Ack, "a QoS 0 message has nothing to acknowledge")
	assert.NotZero(t, byPayload["qos-1"].Ack.PacketID(), "QoS 1: acknowledged with its packet id")
	assert.NotZero(t, byPayload["qos-2"].Ack.PacketID(), "QoS 2 is delivered at the subscription's QoS 1")
	mqtt.AckAll([]mqtt.Ack{byPayload["qos-0"].Ack, byPayload["qos-1"].Ack, byPayload["qos-2"].Ack})
	s.Close(time.Second)

	c.onlyThese(t, c.subscribe(t, false))
}

func testResume(t *testing.T, c *contract) {
	s := c.subscribe(t, false)
	assert.False(t, s.connected(t), "a new client id has no session yet")
	first := c.payloads(3)
	c.publish(t, 1, first...)
	ackAll(s.receive(t, 3))

	c.proxy.Cut()
	away := c.payloads(5)
	c.publish(t, 1, away...) // while the subscriber is cut off
	c.proxy.Restore()
	assert.True(t, s.connected(t), "the broker kept the session")
	var resumed []string
	for _, m := range c.upToSentinel(t, s) {
		if slices.Contains(first, string(m.Payload)) {
			// Acknowledged just before the cut: its PUBACK may have been
			// lost with the connection. Redelivered, it is marked so.
			assert.True(t, m.Dup, "%s: acknowledged before the cut and sent again: DUP", m.Payload)
			continue
		}
		resumed = append(resumed, string(m.Payload))
	}
	assert.ElementsMatch(t, away, resumed, "what was published while away arrives on reconnect, once")
}

func testRedelivery(t *testing.T, c *contract) {
	s := c.subscribe(t, false)
	s.connected(t)
	sent := c.payloads(5)
	c.publish(t, 1, sent...)
	for _, m := range s.receive(t, 5) {
		assert.False(t, m.Dup, "%s: first delivery", m.Payload)
	} // not acknowledged

	assert.True(t, c.reconnect(t, s), "session present")
	again := s.receive(t, 5)
	assert.ElementsMatch(t, sent, payloadsOf(again), "the unacknowledged come again")
	for _, m := range again {
		assert.True(t, m.Dup, "%s: redelivered with DUP set (3.1.1, 4.4)", m.Payload)
	}
	ackAll(again)
	c.onlyThese(t, s)
}

func testStaleAcks(t *testing.T, c *contract) {
	s := c.subscribe(t, false)
	s.connected(t)
	sent := c.payloads(4)
	c.publish(t, 1, sent...)
	before := s.receive(t, 4)

	c.reconnect(t, s)
	again := s.receive(t, 4) // the same messages, very likely with the same packet ids
	ackAll(before)           // stale: their connection is gone
	s.Close(time.Second)

	// Had those acks reached the broker on the new connection, they would
	// have acknowledged the redelivered messages.
	s = c.subscribe(t, false)
	third := s.receive(t, 4)
	assert.ElementsMatch(t, sent, payloadsOf(third), "stale acks acknowledged nothing")
	assert.ElementsMatch(t, payloadsOf(again), payloadsOf(third))
	ackAll(third)
	c.onlyThese(t, s)
}

func testOutOfOrderAcks(t *testing.T, c *contract) {
	s := c.subscribe(t, false)
	s.connected(t)
	c.publish(t, 1, c.payloads(30)...)
	got := s.receive(t, 30)
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
	kept := got[:3]
	rest := got[3:]
	for len(rest) > 0 { // in batches of 1 to 7, as deliveries end
		n := min(len(rest), 1+r.IntN(7))
		ackAll(rest[:n])
		rest = rest[n:]
	}
	s.Close(time.Second) // after the broker read every PUBACK

	s = c.subscribe(t, false)
	again := s.receive(t, 3)
	assert.ElementsMatch(t, payloadsOf(kept), payloadsOf(again), "exactly the unacknowledged come back")
	for _, m := range again {
		assert.True(t, m.Dup, "%s: DUP", m.Payload)
	}
	ackAll(again)
	c.onlyThese(t, s)
}

// testIDReuse moves more messages through one connection than there are
// packet ids, acknowledging each round before the next is published.
func testIDReuse(t *testing.T, c *contract) {
	const rounds, perRound = 70, 1000
	s := c.subscribe(t, false)
	s.connected(t)
	seen := make(map[uint16]int, 1<<16)
	received := make(map[string]int, rounds*perRound)
	for range rounds {
		c.publish(t, 1, c.payloads(perRound)...)
		got := s.receive(t, perRound)
		slices.Reverse(got)
		for _, m := range got {
			seen[m.Ack.PacketID()]++
			received[string(m.Payload)]++
		}
		ackAll(got)
	}
	reused := 0
	for _, n := range seen {
		if n > 1 {
			reused++
		}
	}
	assert.Positive(t, reused, "the broker reused packet ids (%d distinct ids for %d messages)", len(seen), rounds*perRound)
	assert.Len(t, received, rounds*perRound, "each message arrived")
	for p, n := range received {
		if n != 1 {
			t.Errorf("%s arrived %d times", p, n)
		}
	}
	s.Close(time.Second)
	c.onlyThese(t, c.subscribe(t, false))
}

func testLargePayload(t *testing.T, c *contract) {
	const limit = 64 << 10 // tempwatch.MaxPayloadBytes
	s := c.subscribe(t, false, func(o *mqtt.Options) { o.MaxPayload, o.HeadBytes = limit, 1<<10 })
	s.connected(t)
	full := strings.Repeat("0123456789abcdef", limit/16)
	c.publish(t, 1, full, "small")
	got := s.receive(t, 2)
	require.Equal(t, full, string(got[0].Payload), "larger than the read buffer with its headers, delivered whole")
	assert.Equal(t, limit, got[0].Size)
	assert.Equal(t, "small", string(got[1].Payload), "and the stream goes on")
	ackAll(got)
	c.onlyThese(t, s)
}

func testCleanSession(t *testing.T, c *contract) {
	s := c.subscribe(t, true)
	assert.False(t, s.connected(t), "no session present")
	s.Close(time.Second)
	// A PUBACK does not say the message has been routed (the embedded broker
	// acks first), so a witness on another client id receiving all three is
	// the signal that they were routed before the next session subscribed.
	witness := c.subscribe(t, true, func(o *mqtt.Options) { o.ClientID += "-witness" })
	witness.connected(t)
	c.publish(t, 1, c.payloads(3)...) // nobody's session holds these
	ackAll(witness.receive(t, 3))
	s = c.subscribe(t, true)
	assert.False(t, s.connected(t), "no session present")
	c.onlyThese(t, s)
}

func ackAll(ms []mqtt.Message) {
	acks := make([]mqtt.Ack, len(ms))
	for i, m := range ms {
		acks[i] = m.Ack
	}
	mqtt.AckAll(acks)
}

func payloadsOf(ms []mqtt.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Payload)
	}
	return out
}

func waitToken(tok paho.Token) error {
	if !tok.WaitTimeout(wait) {
		return fmt.Errorf("no answer within %s", wait)
	}
	return tok.Error()
}
