// Package mqtt is the bridge's MQTT client: a QoS 1 subscriber with a
// persistent session that hands every message on unacknowledged and writes
// its PUBACK when the application says so, in any order, on the connection
// the message arrived on.
//
// It speaks MQTT 3.1.1 (OASIS, protocol level 4) and only as much of it as
// a subscriber needs; it owns its connection, so nothing depends on how
// another client library orders its reading, dispatching and reconnecting.
//
// What it does:
//   - CONNECT with the options' client id, username, password, clean-session
//     flag and keepalive. A CONNACK refusing the client (return codes 1, 2,
//     4, 5) fails Subscribe with the broker's reason; "server unavailable"
//     (3), and any refusal on a later reconnect, is retried.
//   - SUBSCRIBE to one filter (a plain topic filter or $share/<group>/…) at
//     QoS 1 after every CONNACK, since a broker that lost the session has
//     lost the subscription too. A SUBACK refusing it (0x80) or granting
//     QoS 0 fails the connection (and, on the first, Subscribe): the
//     bridge's guarantees need QoS 1.
//   - PUBLISH received at QoS 0 and 1, handed on in the order the broker
//     sent them, from one goroutine at a time. A QoS 1 message carries an
//     Ack; AckAll writes PUBACKs in whatever order and grouping the caller
//     chooses, to the connection the message came on. The client keeps no
//     record of received packet ids: the broker may reuse an id as soon as
//     its PUBACK is in, and redelivers (DUP set) what was not acknowledged
//     when a persistent session resumes (3.1.1, 4.4).
//   - PINGREQ when nothing was written for half the keepalive; a connection
//     whose PINGRESP does not come within the keepalive is dropped.
//   - Reconnecting, after any loss, with capped exponential backoff, and a
//     graceful DISCONNECT on Close that waits for the broker to close the
//     connection, so every PUBACK written before it has been read.
//   - tcp:// and mqtt:// (port 1883 by default), ssl://, tls://, mqtts://
//     (TLS, port 8883 by default).
//
// MQTT 3.1.1 has no flow control for what a subscriber receives: the
// broker's in-flight window bounds the unacknowledged messages it sends,
// and the client reads on whatever the application holds, so keepalives
// never stall.
//
// What it does not do: publish (no outbound PUBLISH, PUBACK handling, or
// message store); QoS 2 (subscribed at QoS 1, the broker sends none, and
// one that does breaks the connection as a protocol error); will messages;
// UNSUBSCRIBE; several filters; MQTT 3.1 or 5; WebSocket transports and
// SOCKS or HTTP proxies; checking that topics are valid UTF-8 (the ingest
// function checks each topic it stores).
package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure the subscription.
type Options struct {
	URL          string // tcp://host:1883, mqtt://, ssl://, tls://, mqtts://
	ClientID     string
	Topic        string // e.g. tempwatch/+/sensors/+/readings
	SharedGroup  string // non-empty subscribes to $share/<group>/<topic>
	CleanSession bool
	// Username and Password log in; a URL's userinfo does when Username
	// is empty. MQTT 3.1.1 allows no password without a username.
	Username string
	Password string
	// TLSConfig is used for the TLS schemes; nil verifies the broker
	// against the system's roots. Its ServerName defaults to the URL's host.
	TLSConfig *tls.Config
	// KeepAlive is the keepalive sent in CONNECT, in whole seconds
	// (default 30 s).
	KeepAlive time.Duration
	// ConnectTimeout bounds dialing, the TLS handshake, CONNACK and SUBACK
	// of one connection (default 30 s); Subscribe waits as long for its
	// first subscription, retrying meanwhile.
	ConnectTimeout time.Duration
	// ReconnectDelay is the wait before the first retry after a lost or
	// failed connection (default 1 s), doubled per failure up to
	// MaxReconnectDelay (default 10 s).
	ReconnectDelay    time.Duration
	MaxReconnectDelay time.Duration
	// OnConnect, when set, is called after every subscribed connection
	// (CONNACK and SUBACK in), with the CONNACK's session-present flag: a
	// persistent session the broker kept says true.
	OnConnect func(sessionPresent bool)
	// OnDisconnect, when set, is called when a subscribed connection ends
	// (lost, or closed by Close).
	OnDisconnect func()
	Log          *slog.Logger
	// ReadPause, when positive, makes the connection wait this long after
	// a read that brought little, so that many messages come in with the
	// next read instead of one read (and wake-up) each; it adds up to
	// ReadPause to a message's latency.
	ReadPause time.Duration
	// MaxPayload, when positive, bounds what the subscriber holds of one
	// message: a longer payload is handed on as its first HeadBytes only,
	// with Message.Size its full length, and the rest is read and dropped.
	MaxPayload int
	HeadBytes  int

	// dialer, in tests, stands in for dialing the URL.
	dialer func(context.Context) (net.Conn, error)
}

// Filter is the subscription filter: the topic, or its shared form.
func (o Options) Filter() string {
	if o.SharedGroup == "" {
		return o.Topic
	}
	return "$share/" + o.SharedGroup + "/" + o.Topic
}

// Message is one received publish; pass its Ack to AckAll once it is
// stored.
type Message struct {
	Topic string
	// Payload is the whole payload, or only its head when Size is larger
	// (see Options.MaxPayload).
	Payload []byte
	Size    int // the payload's full length
	// Dup is set on a message the broker sends again (3.3.1.1): one it
	// sent before without a PUBACK, on this session's previous connection.
	Dup bool
	// Retained is set on a message the broker replays from its retained
	// store to a new subscription (MQTT 3.1.1, 3.3.1.3), not on one
	// published while the subscription stood.
	Retained bool
	Ack      Ack
}

// Ack acknowledges one received QoS 1 message. It is a value, not a
// closure, so holding thousands costs nothing and a batch's PUBACKs leave
// in one write. The zero Ack (a QoS 0 message) acknowledges nothing.
type Ack struct {
	// c is the connection the message arrived on; its PUBACK goes there and
	// nowhere else: after a reconnect the broker may use the same packet id
	// for another message.
	c  *conn
	id uint16
}

// PacketID is the broker's packet identifier of the message (0 for QoS 0),
// for logs and tests: it names the message only on its connection and
// until its PUBACK.
func (a Ack) PacketID() uint16 { return a.id }

// AckAll acknowledges acks: the PUBACKs of messages that arrived on one
// connection are written at once. Ack each message once only: the broker
// may reuse a packet id as soon as its PUBACK arrives, and a second one
// would acknowledge a message nobody stored. A PUBACK for a connection that
// has closed is dropped; the broker redelivers that message on the next.
func AckAll(acks []Ack) {
	var buf []byte
	for i := 0; i < len(acks); {
		c := acks[i].c
		if c == nil {
			i++
			continue
		}
		buf = buf[:0]
		for ; i < len(acks) && acks[i].c == c; i++ {
			buf = appendPuback(buf, acks[i].id)
		}
		_ = c.write(buf) // an error means the connection is gone
	}
}

// Subscriber is a subscription that reconnects by itself.
type Subscriber struct {
	o      Options
	filter string
	handle func(Message)
	ctx    context.Context // ends at Close, stopping dials and waits
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	// closing, once set, keeps messages from being handed on: after Close
	// they stay unacknowledged, for the next session.
	closing   atomic.Bool
	mu        sync.Mutex
	cur       *conn // the connection being set up or read
	closed    bool
	lastErr   error // of the last failed connection attempt
	closeOnce sync.Once
}

// Subscribe connects and subscribes; handle is called for every message,
// from the goroutine that reads the connection (one at a time, in the
// order the broker sent them; possibly before Subscribe returns, with what
// a persistent session kept). It must return at once (hand the message on;
// never wait: nothing else is read meanwhile) and must eventually pass its
// Ack to AckAll, or drop the message, which the broker then redelivers
// after the next reconnect. Subscribe returns once the first connection is
// up and subscribed; later losses reconnect and resubscribe by themselves.
// A broker that refuses the client (bad credentials, say) fails Subscribe
// at once; one that cannot be reached is retried for ConnectTimeout.
func Subscribe(o Options, handle func(Message)) (*Subscriber, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	s := &Subscriber{o: o, filter: o.Filter(), handle: handle, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	first := make(chan error, 1)
	go s.run(first)
	timeout := time.NewTimer(o.ConnectTimeout)
	defer timeout.Stop()
	select {
	case err := <-first:
		if err != nil {
			s.Close(0)
			return nil, err
		}
		return s, nil
	case <-timeout.C:
		s.Close(0)
		s.mu.Lock()
		last := s.lastErr
		s.mu.Unlock()
		if last == nil {
			last = errors.New("the first attempt took all that time")
		}
		return nil, fmt.Errorf("mqtt subscribe to %s at %s: no subscription within %s; last error: %w", s.filter, redact(o.URL), o.ConnectTimeout, last)
	}
}

// Close disconnects: it stops handing messages on, sends DISCONNECT and
// waits at most quiesce for the broker to close the connection (it does so
// once it has read everything before the DISCONNECT, PUBACKs included).
// Messages not acknowledged by then are redelivered to the next session.
func (s *Subscriber) Close(quiesce time.Duration) {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.mu.Lock()
		s.closed = true
		c := s.cur
		s.mu.Unlock()
		s.cancel()
		if c != nil {
			c.disconnect(quiesce)
		}
		<-s.done
	})
}

// run connects, reads until the connection is lost, and connects again,
// until Close. It reports the first subscription's outcome on first.
func (s *Subscriber) run(first chan<- error) {
	defer close(s.done)
	log := s.o.Log
	delay, started := s.o.ReconnectDelay, false
	for {
		c, present, err := s.connect()
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			// A refusal at start-up is the configuration's (credentials,
			// client id, ACL): say so at once. Later, it may be the
			// broker's passing state (its authentication backend down).
			var refused *RefusedError
			if !started && (errors.As(err, &refused) && refused.Code != connackUnavailable || errors.Is(err, errSubscriptionRefused)) {
				first <- err
				return
			}
			s.mu.Lock()
			s.lastErr = err
			s.mu.Unlock()
			log.Warn("mqtt connect failed; retrying", "url", redact(s.o.URL), "client_id", s.o.ClientID, "error", err, "retry_in", delay)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, s.o.MaxReconnectDelay)
			continue
		}
		delay = s.o.ReconnectDelay
		log.Info("mqtt subscribed", "filter", s.filter, "client_id", s.o.ClientID, "session_present", present)
		if !s.o.CleanSession && !present {
			log.Info("the broker had no session for this client id: it holds nothing of what was published while the bridge was away", "client_id", s.o.ClientID)
		}
		if s.o.OnConnect != nil {
			s.o.OnConnect(present)
		}
		if !started {
			started = true
			first <- nil
		}
		<-c.done
		if s.o.OnDisconnect != nil {
			s.o.OnDisconnect()
		}
		if s.ctx.Err() != nil {
			return
		}
		log.Warn("mqtt connection lost; reconnecting", "error", c.cause())
	}
}

// connect dials, logs in and subscribes, and returns the connection being
// read, with the CONNACK's session-present flag.
func (s *Subscriber) connect() (c *conn, present bool, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.o.ConnectTimeout)
	defer cancel()
	nc, err := s.dial(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("mqtt dial %s: %w", redact(s.o.URL), err)
	}
	c = newConn(nc, s.o)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.fail(net.ErrClosed)
		return nil, false, net.ErrClosed
	}
	s.cur = c
	s.mu.Unlock()
	if present, err = c.login(ctx, s.o); err != nil {
		return nil, false, err
	}
	go c.read(s)
	go c.keepalive(s.o.KeepAlive)
	if err := c.subscribe(ctx, s.filter); err != nil {
		c.fail(err)
		<-c.done
		return nil, false, err
	}
	return c, present, nil
}

// dial opens the network connection the URL names.
func (s *Subscriber) dial(ctx context.Context) (net.Conn, error) {
	if s.o.dialer != nil {
		return s.o.dialer(ctx)
	}
	u, _ := url.Parse(s.o.URL) // checked by setDefaults
	d := &net.Dialer{}
	if tlsScheme(u.Scheme) {
		return (&tls.Dialer{NetDialer: d, Config: s.o.TLSConfig}).DialContext(ctx, "tcp", hostPort(u))
	}
	return d.DialContext(ctx, "tcp", hostPort(u))
}

// setDefaults fills in the defaults and checks what the broker would
// refuse or misread.
func (o *Options) setDefaults() error {
	u, err := url.Parse(o.URL)
	if err != nil {
		return fmt.Errorf("mqtt: URL: %w", err)
	}
	if !tlsScheme(u.Scheme) && u.Scheme != "tcp" && u.Scheme != "mqtt" {
		return fmt.Errorf("mqtt: URL %s: scheme %q is not one of tcp, mqtt, ssl, tls, mqtts", redact(o.URL), u.Scheme)
	}
	if o.Username == "" && u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	switch {
	case o.Password != "" && o.Username == "":
		return errors.New("mqtt: a password needs a username (MQTT 3.1.1, 3.1.2.9)")
	case o.ClientID == "" && !o.CleanSession:
		return errors.New("mqtt: a persistent session needs a client id")
	case o.Topic == "":
		return errors.New("mqtt: no topic to subscribe to")
	}
	for name, v := range map[string]string{"client id": o.ClientID, "username": o.Username, "password": o.Password, "filter": o.Filter()} {
		if len(v) > 0xffff {
			return fmt.Errorf("mqtt: the %s is %d bytes, over MQTT's 65535", name, len(v))
		}
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 30 * time.Second
	}
	o.KeepAlive = min(max(o.KeepAlive.Truncate(time.Second), time.Second), 0xffff*time.Second)
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.ReconnectDelay <= 0 {
		o.ReconnectDelay = time.Second
	}
	if o.MaxReconnectDelay < o.ReconnectDelay {
		o.MaxReconnectDelay = max(10*time.Second, o.ReconnectDelay)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return nil
}

func tlsScheme(s string) bool {
	switch s {
	case "ssl", "tls", "mqtts":
		return true
	}
	return false
}

// hostPort is the URL's host with MQTT's port for its scheme by default.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if tlsScheme(u.Scheme) {
		return net.JoinHostPort(u.Hostname(), "8883")
	}
	return net.JoinHostPort(u.Hostname(), "1883")
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
