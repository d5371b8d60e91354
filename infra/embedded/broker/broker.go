// Package broker runs an MQTT broker (mochi-mqtt) inside the current process,
// for development and tests where no broker is configured. It asks
// shared/deviceauth — the rule EMQX and AWS IoT Core ask over their own
// interfaces — at every CONNECT, PUBLISH and SUBSCRIBE.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// MaxPacketSize is the largest MQTT packet the broker takes: the payload
// limit plus room for the fixed header, topic and packet id, as in the
// shipped EMQX and Mosquitto configurations.
const MaxPacketSize = tempwatch.MaxPayloadBytes + 1<<10

// connectTimeout bounds how long a new connection may take to send its
// CONNECT, and the key lookup of one CONNECT.
const connectTimeout = 5 * time.Second

// Start runs an MQTT broker on addr (host:port; port 0 picks a free one)
// that lets in and authorizes exactly what auth allows. It returns the
// broker's URL (tcp://host:port) once it accepts connections. stop closes
// the broker and its client connections; it is safe to call more than once.
// The broker logs refusals and its own warnings to stderr.
func Start(addr string, auth *deviceauth.Authority) (url string, stop func(), err error) {
	srv, err := Serve(addr, auth)
	if err != nil {
		return "", nil, err
	}
	return srv.URL(), srv.Close, nil
}

// Server is a running broker.
type Server struct {
	url   string
	done  chan struct{}
	close func()
}

// URL is the broker's tcp:// URL.
func (s *Server) URL() string { return s.url }

// Done is closed when the broker stops accepting connections, asked
// (Close) or not.
func (s *Server) Done() <-chan struct{} { return s.done }

// Close stops the broker; it is safe to call more than once.
func (s *Server) Close() { s.close() }

// Serve is Start returning the Server, so a caller can tell when it stops.
func Serve(addr string, auth *deviceauth.Authority) (*Server, error) {
	if auth == nil {
		return nil, errors.New("broker: an authority is required (no broker of ours lets everyone in)")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// mochi acks a QoS 1 publish before it routes it and drops the message
	// for a subscriber that already holds MaximumInflight unacknowledged
	// (default 8192): a burst the bridge has not yet stored, or what arrives
	// while its persistent session is away, beyond that is lost. The most
	// packet ids allow moves that point as far out as MQTT can.
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumInflight = math.MaxUint16
	// mochi accepts packets of any size by default and allocates a packet's
	// announced length before reading it, even a CONNECT nobody has
	// authenticated yet: without a cap, five bytes ask it for 256 MiB. A
	// larger packet than a full payload with its headers ends the
	// connection, unacknowledged.
	caps.MaximumPacketSize = MaxPacketSize
	// No retained messages: the bridge's plain (non-shared) subscription gets
	// every retained message again each time it subscribes, and ingest stores
	// one without a timestamp as a new reading each time; a retained will
	// would outlive the key that set it. Nothing on the readings path needs
	// them. A CONNECT with a retained will is refused, a retained PUBLISH is
	// delivered but not kept.
	caps.RetainAvailable = 0
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: logger, Capabilities: caps})
	if err := srv.AddHook(&authHook{auth: auth, log: logger}, nil); err != nil {
		return nil, fmt.Errorf("broker: add auth hook: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	done, unread, open := make(chan struct{}), new(sync.WaitGroup), &openConns{m: map[*readCounted]struct{}{}}
	accept := connectDeadline{Listener: ln, ended: sync.OnceFunc(func() { close(done) }), unread: unread, open: open}
	tcp := listener{Net: listeners.NewNet("tcp", accept), srv: srv, open: open}
	if err := srv.AddListener(tcp); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("broker: serve: %w", err)
	}
	// mochi's Close counts a connection it accepts while Close waits for the
	// connections to end (a race) and drops, unclosed, one it accepts after
	// it marked the listener ended. So the socket is closed first, and
	// mochi's Close runs when its accept loop has ended and each connection
	// it accepted has been read once (it counts a connection before that).
	stop := sync.OnceFunc(func() {
		_ = ln.Close()
		<-done
		unread.Wait()
		_ = srv.Close()
	})
	return &Server{url: "tcp://" + tcp.Address(), done: done, close: stop}, nil
}

// listener is mochi's TCP listener disconnecting its clients at Close from
// one copy of the client list. mochi's own way (Clients.GetByListener)
// takes the list's read lock twice: a client connecting or leaving in
// between queues a write lock the second read waits behind, and Close never
// returns (mochi-mqtt v2.7.9). A connection whose CONNECT is still being
// authenticated is on no list yet: its socket is closed, or once let in it
// would hold mochi's Close until it left (never, with keepalive 0).
type listener struct {
	*listeners.Net
	srv  *mqtt.Server
	open *openConns
}

func (l listener) Close(listeners.CloseFn) {
	l.Net.Close(func(id string) {
		for _, cl := range l.srv.Clients.GetAll() {
			if cl.Net.Listener == id && !cl.Closed() {
				_ = l.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
		l.open.closeAll()
	})
}

// openConns are the connections accepted and not yet closed.
type openConns struct {
	mu sync.Mutex
	m  map[*readCounted]struct{}
}

func (o *openConns) add(c *readCounted) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m[c] = struct{}{}
}

func (o *openConns) remove(c *readCounted) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, c)
}

func (o *openConns) closeAll() {
	o.mu.Lock()
	all := make([]*readCounted, 0, len(o.m))
	for c := range o.m {
		all = append(all, c)
	}
	o.mu.Unlock()
	for _, c := range all {
		_ = c.Close()
	}
}

// connectDeadline gives every new connection connectTimeout to send its
// CONNECT: mochi sets no deadline before it, so a connection that never
// sends one would hold a descriptor and its buffers for good. mochi
// replaces the deadline with the client's keepalive once the CONNECT is in.
// It calls ended when Accept fails, which ends mochi's accept loop, counts
// in unread the connections not yet read, and keeps the open ones in open.
type connectDeadline struct {
	net.Listener
	ended  func()
	unread *sync.WaitGroup
	open   *openConns
}

func (l connectDeadline) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		l.ended()
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(connectTimeout))
	l.unread.Add(1)
	rc := &readCounted{Conn: c, read: sync.OnceFunc(l.unread.Done), open: l.open}
	l.open.add(rc)
	return rc, nil
}

// readCounted calls read at its first Read and leaves open when closed.
type readCounted struct {
	net.Conn
	read func()
	open *openConns
}

func (c *readCounted) Read(p []byte) (int, error) {
	c.read()
	return c.Conn.Read(p)
}

func (c *readCounted) Close() error {
	c.open.remove(c)
	return c.Conn.Close()
}

// authHook asks the authority. mochi runs OnConnectAuthenticate before a
// client can take over the session of one with the same client id, so a
// refused client never disturbs the bridge's session.
type authHook struct {
	mqtt.HookBase
	auth *deviceauth.Authority
	log  *slog.Logger
}

func (h *authHook) ID() string { return "tempwatch-deviceauth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	_, err := h.auth.Connect(ctx, cl.ID, string(pk.Connect.Username), string(pk.Connect.Password))
	// mochi publishes a will without asking OnACLCheck, so its topic is
	// checked here, as a PUBLISH of the client would be: one device's will
	// on another's readings topic would be stored as that device's reading.
	if err == nil && pk.Connect.WillFlag && !h.auth.Allowed(string(pk.Connect.Username), cl.ID, deviceauth.Publish, pk.Connect.WillTopic) {
		err = fmt.Errorf("%w: the will topic %q is not one the client may publish to", deviceauth.ErrRefused, deviceauth.LogSafe(pk.Connect.WillTopic))
	}
	if err != nil {
		h.log.Warn("mqtt connect refused", "client_id", deviceauth.LogSafe(cl.ID), "username", deviceauth.LogSafe(string(pk.Connect.Username)),
			"remote", cl.Net.Remote, "reason", err)
		return false
	}
	return true
}

// OnACLCheck is asked for every PUBLISH a client sends (write), every
// filter it subscribes to, and every message about to be delivered to it.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	action := deviceauth.Subscribe
	if write {
		action = deviceauth.Publish
	}
	if h.auth.Allowed(string(cl.Properties.Username), cl.ID, action, topic) {
		return true
	}
	h.log.Warn("mqtt "+string(action)+" refused", "client_id", deviceauth.LogSafe(cl.ID), "username", deviceauth.LogSafe(string(cl.Properties.Username)),
		"topic", deviceauth.LogSafe(topic))
	return false
}
