package mqtt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// readBufferSize is the connection's read buffer; a PUBLISH that fits it
// is parsed in place.
const readBufferSize = 64 << 10

// subscribeID is the packet id of the client's one SUBSCRIBE per
// connection (the client's ids are its own, apart from the broker's).
const subscribeID = 1

// CONNACK return codes (3.2.2.3).
const (
	connackAccepted    = 0
	connackUnavailable = 3
)

var connackReasons = map[byte]string{
	1: "unacceptable protocol version",
	2: "client identifier rejected",
	3: "server unavailable",
	4: "bad user name or password",
	5: "not authorized",
}

// errSubscriptionRefused is a SUBACK that refuses the filter or grants
// less than QoS 1.
var errSubscriptionRefused = errors.New("subscription refused by the broker")

// RefusedError is a broker's refusal of CONNECT.
type RefusedError struct {
	URL  string // redacted
	Code byte   // the CONNACK return code
}

func (e *RefusedError) Error() string {
	reason, ok := connackReasons[e.Code]
	if !ok {
		reason = "unknown return code"
	}
	return fmt.Sprintf("mqtt connect to %s: refused: %s (CONNACK %d)", e.URL, reason, e.Code)
}

// conn is one network connection to the broker, from CONNECT to its close.
// Writes (PUBACKs from any goroutine, PINGREQ, DISCONNECT) are serialized,
// each in one syscall; reads happen in one goroutine (read).
type conn struct {
	nc   net.Conn
	r    reader
	born time.Time // the clock of lastWrite and pingSent

	wmu          sync.Mutex
	writeTimeout time.Duration
	writeClosed  bool         // DISCONNECT sent, or failed
	lastWrite    atomic.Int64 // since born, ns
	pingSent     atomic.Int64 // since born, ns, of an unanswered PINGREQ; 0 when none

	connected atomic.Bool   // CONNACK accepted
	subacks   chan []byte   // SUBACK bodies
	done      chan struct{} // closed when the connection is closed and read no more

	failOnce sync.Once
	err      error // why the connection ended; set once, before nc closes
}

func newConn(nc net.Conn, o Options) *conn {
	var src io.Reader = nc
	if o.ReadPause > 0 {
		src = &pausingReader{Reader: nc, pause: o.ReadPause}
	}
	return &conn{
		nc: nc, born: time.Now(), writeTimeout: o.KeepAlive,
		r:       reader{br: bufio.NewReaderSize(src, readBufferSize), maxPayload: o.MaxPayload, head: o.HeadBytes},
		subacks: make(chan []byte, 1), done: make(chan struct{}),
	}
}

// fail closes the connection, recording err as why unless a cause is
// recorded already.
func (c *conn) fail(err error) {
	c.failOnce.Do(func() {
		c.err = err
		_ = c.nc.Close()
	})
}

// cause is why the connection ended (read it after done is closed).
func (c *conn) cause() error { return c.err }

// write writes b in one call, within writeTimeout. A failed or late write
// ends the connection: a packet half written leaves the stream unusable.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writeClosed {
		return net.ErrClosed
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.writeClosed = true
		c.fail(fmt.Errorf("mqtt write: %w", err))
		return err
	}
	c.lastWrite.Store(int64(time.Since(c.born)))
	return nil
}

// login sends CONNECT and reads CONNACK, within ctx. On failure the
// connection is closed and done.
func (c *conn) login(ctx context.Context, o Options) (present bool, err error) {
	defer func() {
		if err != nil {
			c.fail(err)
			close(c.done)
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := c.write(connectPacket(o.ClientID, o.Username, o.Password, o.CleanSession, o.KeepAlive)); err != nil {
		return false, fmt.Errorf("mqtt connect to %s: %w", redact(o.URL), err)
	}
	early := false
	first, body, err := c.r.next(func(publish) { early = true })
	if err == nil && (early || first != typeConnack<<4 || len(body) != 2) {
		err = fmt.Errorf("%w: packet type %d where CONNACK belongs", errMalformed, first>>4)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return false, fmt.Errorf("mqtt connect to %s: %w", redact(o.URL), err)
	}
	if body[1] != connackAccepted {
		return false, &RefusedError{URL: redact(o.URL), Code: body[1]}
	}
	if !stop() {
		return false, fmt.Errorf("mqtt connect to %s: %w", redact(o.URL), ctx.Err())
	}
	_ = c.nc.SetDeadline(time.Time{})
	c.connected.Store(true)
	return body[0]&1 != 0, nil
}

// subscribe sends SUBSCRIBE and waits for its SUBACK, which read passes on.
func (c *conn) subscribe(ctx context.Context, filter string) error {
	if err := c.write(subscribePacket(subscribeID, filter)); err != nil {
		return fmt.Errorf("mqtt subscribe to %s: %w", filter, err)
	}
	select {
	case b := <-c.subacks:
		switch {
		case len(b) != 3 || uint16(b[0])<<8|uint16(b[1]) != subscribeID:
			return fmt.Errorf("mqtt subscribe to %s: %w: SUBACK % x", filter, errMalformed, b)
		case b[2] == 0x80:
			return fmt.Errorf("mqtt subscribe to %s: %w (SUBACK 0x80)", filter, errSubscriptionRefused)
		case b[2] == 0:
			return fmt.Errorf("mqtt subscribe to %s: %w: granted QoS 0; acknowledging after storage needs QoS 1", filter, errSubscriptionRefused)
		}
		return nil
	case <-c.done:
		return fmt.Errorf("mqtt subscribe to %s: %w", filter, c.cause())
	case <-ctx.Done():
		return fmt.Errorf("mqtt subscribe to %s: no SUBACK: %w", filter, ctx.Err())
	}
}

// read reads the connection until it fails, handing each PUBLISH to s.
func (c *conn) read(s *Subscriber) {
	defer close(c.done)
	deliver := func(p publish) {
		if s.closing.Load() { // after Close: left for the next session
			return
		}
		var ack Ack
		if p.qos == 1 {
			ack = Ack{c: c, id: p.id}
		}
		s.handle(Message{Topic: p.topic, Payload: p.payload, Size: p.size, Dup: p.dup, Retained: p.retain, Ack: ack})
	}
	for {
		first, body, err := c.r.next(deliver)
		if err != nil {
			c.fail(fmt.Errorf("mqtt read: %w", err))
			return
		}
		switch first {
		case typePingresp << 4:
			c.pingSent.Store(0)
		case typeSuback << 4:
			select {
			case c.subacks <- body:
			default: // none asked for
			}
		default:
			c.fail(fmt.Errorf("mqtt read: %w: unexpected packet type %d (flags %#x)", errMalformed, first>>4, first&0xf))
			return
		}
	}
}

// keepalive sends PINGREQ once nothing was written for half of every, and
// ends the connection when a PINGREQ goes unanswered for every.
func (c *conn) keepalive(every time.Duration) {
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		now := int64(time.Since(c.born))
		if sent := c.pingSent.Load(); sent != 0 {
			if time.Duration(now-sent) >= every {
				c.fail(fmt.Errorf("mqtt keepalive: no PINGRESP within %s", every))
				return
			}
			continue
		}
		if time.Duration(now-c.lastWrite.Load()) >= every/2 {
			c.pingSent.Store(max(now, 1))
			if c.write(pingreqPacket) != nil {
				return
			}
		}
	}
}

// disconnect ends the connection gracefully: DISCONNECT, then wait (at
// most quiesce) for the broker to close its side, which it does after
// reading everything sent before.
func (c *conn) disconnect(quiesce time.Duration) {
	if c.connected.Load() && c.write(disconnectPacket) == nil {
		c.wmu.Lock()
		c.writeClosed = true
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		c.wmu.Unlock()
		t := time.NewTimer(quiesce)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
	}
	c.fail(net.ErrClosed)
}
