// Package mqtt is the bridge's paho.mqtt.golang adapter: a QoS 1 subscription
// with a persistent session, subscribed in the on-connect handler, that hands
// every message on unacknowledged (manual acks).
package mqtt

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Options configure the subscription.
type Options struct {
	URL          string // tcp://host:1883, ssl://, ws://
	ClientID     string
	Topic        string // e.g. tempwatch/+/sensors/+/readings
	SharedGroup  string // non-empty subscribes to $share/<group>/<topic>
	CleanSession bool
	Username     string
	Password     string
	Log          *slog.Logger
	// ReadPause, when positive, makes the connection wait this long after
	// a read that brought little, so that many messages come in with the
	// next read instead of one read (and wake-up) each; it adds up to
	// ReadPause to a message's latency.
	ReadPause time.Duration
	// MaxPayload, when positive, bounds what the subscriber holds of one
	// message: a longer payload is handed on as its first HeadBytes only,
	// with Message.Size its full length, and the rest is read and dropped.
	// Where paho reads the connection itself (ws, wss, a proxy) it reads a
	// message whole first: bound that with the broker's maximum packet size.
	MaxPayload int
	HeadBytes  int
}

// Message is one received publish; pass its Ack to AckAll once it is
// stored.
type Message struct {
	Topic string
	// Payload is the whole payload, or only its head when Size is larger
	// (see Options.MaxPayload).
	Payload []byte
	Size    int // the payload's full length
	Dup     bool
	// Retained is set on a message the broker replays from its retained
	// store to a new subscription (MQTT 3.1.1, 3.3.1.3), not on one
	// published while the subscription stood.
	Retained bool
	Ack      Ack
}

// Ack acknowledges one received message. It is a value, not a closure, so
// holding thousands costs nothing and a batch's PUBACKs leave in one write.
// The zero Ack (a QoS 0 message) acknowledges nothing.
type Ack struct {
	// conn is the connection the message arrived on, when the subscriber
	// dialed it itself (tcp, ssl); its PUBACK goes there and nowhere else:
	// after a reconnect the broker may use the same packet id for another
	// message.
	conn *bufferedConn
	id   uint16
	// msg is paho's own message, acknowledged through paho, when paho
	// dialed the connection (ws, wss, a proxy) or for QoS 2.
	msg paho.Message
}

// AckAll acknowledges acks: the PUBACKs of messages that arrived on one
// buffered connection are written at once. Ack each message once only: the
// broker may reuse a packet id as soon as its PUBACK arrives, and a second
// one would acknowledge a message nobody stored. A PUBACK for a connection
// that has closed is dropped; the broker redelivers that message.
func AckAll(acks []Ack) {
	var buf []byte
	for i := 0; i < len(acks); {
		a := acks[i]
		if a.conn == nil {
			if a.msg != nil {
				a.msg.Ack()
			}
			i++
			continue
		}
		buf = buf[:0]
		for ; i < len(acks) && acks[i].conn == a.conn; i++ {
			buf = append(buf, pubackType, 2, byte(acks[i].id>>8), byte(acks[i].id))
		}
		_, _ = a.conn.Write(buf) // an error means the connection is gone
	}
}

// pubackType is the first byte of an MQTT 3.1.1 PUBACK.
const pubackType = 0x40

// bound applies MaxPayload to a payload of size bytes, of which p is the
// whole or (read truncated) the head: a longer one is cut to a copy of its
// head, so the whole can be collected.
func (o *Options) bound(p []byte, size int) ([]byte, int) {
	if o.MaxPayload <= 0 || size <= o.MaxPayload || len(p) <= o.HeadBytes {
		return p, size
	}
	return append([]byte(nil), p[:max(o.HeadBytes, 0)]...), size
}

// Filter is the subscription filter: the topic, or its shared form.
func (o Options) Filter() string {
	if o.SharedGroup == "" {
		return o.Topic
	}
	return "$share/" + o.SharedGroup + "/" + o.Topic
}

// Subscriber is a connected client.
type Subscriber struct {
	client paho.Client
}

// Subscribe connects and subscribes; handle is called for every message in
// the goroutine that reads the connection (or, for a message paho delivers
// itself, see publishReader, in paho's dispatch goroutine: handle must be
// safe for concurrent use). It must return at once (hand the message on;
// never wait: nothing else is read meanwhile) and must eventually pass its
// Ack to AckAll (or drop the message, which the broker then redelivers
// after the next reconnect). Subscribe returns once the first connection is
// up and subscribed; later losses reconnect and resubscribe by themselves.
func Subscribe(o Options, handle func(Message)) (*Subscriber, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	filter := o.Filter()
	subscribed := make(chan struct{})
	var once sync.Once
	// The connection the client reads from now. paho dispatches a
	// connection's last message before it dials the next (a reconnect waits
	// for the dispatcher to stop), and calls handle inline (order matters),
	// so in handle this is the connection the message arrived on.
	var current atomic.Pointer[bufferedConn]
	onMessage := func(_ paho.Client, m paho.Message) {
		ack := Ack{msg: m}
		switch m.Qos() {
		case 0:
			ack = Ack{}
		case 1:
			if c := current.Load(); c != nil {
				ack = Ack{conn: c, id: m.MessageID()}
			}
		}
		payload, size := o.bound(m.Payload(), len(m.Payload()))
		handle(Message{Topic: m.Topic(), Payload: payload, Size: size, Dup: m.Duplicate(), Retained: m.Retained(), Ack: ack})
	}
	opts := paho.NewClientOptions().
		AddBroker(o.URL).
		SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetCleanSession(o.CleanSession).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		// Inline dispatch: no goroutine per message. handle never blocks.
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetStore(qos1Store{paho.NewMemoryStore()}).
		// The bridge publishes nothing; nothing of its own to resume.
		SetMaxResumePubInFlight(1).
		SetDefaultPublishHandler(onMessage).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			o.Log.Warn("mqtt connection lost; reconnecting", "error", err)
		}).
		SetOnConnectHandler(func(c paho.Client) {
			// Subscribing on every connect restores the subscription after a
			// broker restart that lost the session, and is harmless otherwise.
			// Wait in a goroutine: the on-connect handler must not block paho.
			// No callback: paho would then match every message's topic
			// against it by splitting both at '/'; the default handler
			// (onMessage) takes every message without that.
			t := c.Subscribe(filter, 1, nil)
			go func() {
				if t.WaitTimeout(30*time.Second) && t.Error() == nil {
					once.Do(func() { close(subscribed) })
					o.Log.Info("mqtt subscribed", "filter", filter, "client_id", o.ClientID)
					return
				}
				o.Log.Error("mqtt subscribe failed", "filter", filter, "error", t.Error())
			}()
		})
	// Where the subscriber dials the connection itself, its reader takes
	// the messages off the stream before paho sees them (publishReader).
	in := &inbound{maxPayload: o.MaxPayload, head: o.HeadBytes, deliver: func(c *bufferedConn, p publish) {
		var ack Ack
		if p.qos == 1 {
			ack = Ack{conn: c, id: p.id}
		}
		payload, size := o.bound(p.payload, p.size)
		handle(Message{Topic: p.topic, Payload: payload, Size: size, Dup: p.dup, Retained: p.retain, Ack: ack})
	}}
	if bufferable(opts) {
		opts.SetCustomOpenConnectionFn(func(uri *url.URL, po paho.ClientOptions) (net.Conn, error) {
			c, err := dialBuffered(uri, po, o.ReadPause, in)
			if err != nil {
				return nil, err
			}
			current.Store(c)
			return c, nil
		})
	}
	c := paho.NewClient(opts)
	t := c.Connect()
	if !t.WaitTimeout(30 * time.Second) {
		c.Disconnect(0)
		return nil, fmt.Errorf("mqtt connect to %s: timed out", redact(o.URL))
	}
	if err := t.Error(); err != nil {
		return nil, fmt.Errorf("mqtt connect to %s: %w", redact(o.URL), err)
	}
	select {
	case <-subscribed:
	case <-time.After(30 * time.Second):
		c.Disconnect(0)
		return nil, fmt.Errorf("mqtt subscribe to %s: timed out", filter)
	}
	return &Subscriber{client: c}, nil
}

// Close disconnects, giving queued acks quiesce to reach the broker.
func (s *Subscriber) Close(quiesce time.Duration) {
	s.client.Disconnect(uint(quiesce / time.Millisecond))
}

// qos1Store is paho's memory store without the inbound QoS 1 publishes it
// would keep until their PUBACK: nothing reads them back (the broker, not
// the client, redelivers an unacknowledged QoS 1 message), and PUBACKs
// written by AckAll never pass through paho to delete them.
type qos1Store struct{ *paho.MemoryStore }

func (s qos1Store) Put(key string, m packets.ControlPacket) {
	if p, ok := m.(*packets.PublishPacket); ok && p.Qos == 1 && strings.HasPrefix(key, "i.") {
		return
	}
	s.MemoryStore.Put(key, m)
}

// redact drops the userinfo of a broker URL for logs and errors.
func redact(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + u[i+1:]
		}
	}
	return u
}
