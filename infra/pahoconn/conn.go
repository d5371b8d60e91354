// Package pahoconn gives paho.mqtt.golang clients (the simulator's and the
// benchmark's devices) connections that read through a buffer and coalesce
// writes: paho reads each packet with three or more tiny reads and writes
// each packet with its own write, and where syscalls are expensive those
// dominate. The bridge does not use paho; its own client is bridge/mqtt.
package pahoconn

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

const (
	readBufferSize = 64 << 10
	// maxPending bounds what writers may queue ahead of the socket; beyond
	// it they wait for the flusher.
	maxPending = 256 << 10
	// closeFlushTimeout bounds how long Close waits for pending bytes on a
	// connection that no longer drains. paho may call Close holding its
	// connection lock, so this also bounds a reconnect's delay.
	closeFlushTimeout = time.Second
)

// Buffered makes the client reach tcp, mqtt, ssl, tls and mqtts brokers
// over a connection that reads through a 64 KiB buffer and writes what
// paho queued meanwhile in one syscall. It dials exactly as paho would (the options'
// Dialer, so ConnectTimeout, and TLSConfig). Call it after AddBroker. It
// leaves paho's own dialing in place when any broker is another scheme
// (ws, wss, unix) or a proxy is set in ALL_PROXY/all_proxy.
func Buffered(o *paho.ClientOptions) *paho.ClientOptions {
	if !bufferable(o) {
		return o
	}
	return o.SetCustomOpenConnectionFn(func(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
		c, err := dialBuffered(uri, o)
		if err != nil {
			return nil, err // not a nil *bufferedConn in a non-nil net.Conn
		}
		return c, nil
	})
}

// bufferable reports whether dialBuffered can dial every broker of o as
// paho would.
func bufferable(o *paho.ClientOptions) bool {
	if os.Getenv("ALL_PROXY") != "" || os.Getenv("all_proxy") != "" || len(o.Servers) == 0 {
		return false
	}
	for _, u := range o.Servers {
		if !bufferedScheme(u.Scheme) {
			return false
		}
	}
	return true
}

func bufferedScheme(s string) bool {
	switch s {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		return true
	}
	return false
}

// dialBuffered is paho's openConnection (netconn.go) for the schemes of
// bufferedScheme without a proxy, wrapped in a bufferedConn.
func dialBuffered(uri *url.URL, o paho.ClientOptions) (*bufferedConn, error) {
	// The Dialer carries ConnectTimeout (SetConnectTimeout sets its
	// Timeout); paho falls back to this one when it is nil.
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: 30 * time.Second}
	}
	var c net.Conn
	var err error
	switch uri.Scheme {
	case "tcp", "mqtt":
		c, err = d.Dial("tcp", uri.Host)
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		cfg := o.TLSConfig
		if o.OnConnectAttempt != nil {
			cfg = o.OnConnectAttempt(uri, cfg)
		}
		// Sets ServerName from the host when cfg has none, and bounds the
		// handshake by d.Timeout.
		c, err = tls.DialWithDialer(d, "tcp", uri.Host, cfg)
	default:
		return nil, fmt.Errorf("buffered mqtt connection: unsupported scheme %q", uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return newBufferedConn(c), nil
}

// bufferedConn reads through a buffer and hands writes to one flusher
// goroutine, which writes everything queued since its last write in one
// syscall: at low load each packet goes out at once, under load many go out
// together. Deadlines pass through to the underlying connection; a write
// deadline bounds the flusher's syscall and, through it, a writer waiting
// for room.
//
// A Write only queues, so bytes queued when the connection dies are lost
// even though Write succeeded, as bytes in the kernel's socket buffer always
// could be. For the bridge's PUBACKs that is harmless: the broker redelivers
// the unacknowledged messages when the persistent session reconnects, and
// ingest counts them as duplicates. A QoS 1 publish is safe too: paho
// completes its token only on the broker's PUBACK (a QoS 0 publish's token
// completes once queued).
type bufferedConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	pending sync.Cond // signalled when buf gains bytes or closed is set
	room    sync.Cond // broadcast when buf is taken, err is set or closed is set
	buf     []byte
	err     error // the first write error; sticky
	closed  bool

	done      chan struct{} // closed when the flusher has returned
	closeConn func() error  // closes the underlying connection once
}

// newBufferedConn wraps c and starts its flusher.
func newBufferedConn(c net.Conn) *bufferedConn {
	b := &bufferedConn{
		Conn:      c,
		r:         bufio.NewReaderSize(c, readBufferSize),
		done:      make(chan struct{}),
		closeConn: sync.OnceValue(c.Close),
	}
	b.pending.L = &b.mu
	b.room.L = &b.mu
	go b.flush()
	return b
}

// Read reads through the buffer. Once a write failed it returns that error,
// so paho's reader (blocked in Read until the flusher closes the connection)
// reports the broken connection instead of a silent close.
func (b *bufferedConn) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil {
		b.mu.Lock()
		if b.err != nil {
			err = b.err
		}
		b.mu.Unlock()
	}
	return n, err
}

// Write queues p for the flusher, waiting while more than maxPending bytes
// are queued. It returns the first write error of the connection, or
// net.ErrClosed after Close (paho ignores that one: it closed the connection).
func (b *bufferedConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.buf) >= maxPending && b.err == nil && !b.closed {
		b.room.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.closed {
		return 0, net.ErrClosed
	}
	b.buf = append(b.buf, p...)
	b.pending.Signal()
	return len(p), nil
}

// flush writes what is queued until Close drained the queue or a write failed.
func (b *bufferedConn) flush() {
	defer close(b.done)
	var out []byte
	for {
		b.mu.Lock()
		for len(b.buf) == 0 && !b.closed {
			b.pending.Wait()
		}
		if len(b.buf) == 0 { // closed and drained
			b.mu.Unlock()
			return
		}
		out, b.buf = b.buf, out[:0]
		b.room.Broadcast()
		b.mu.Unlock()

		if _, err := b.Conn.Write(out); err != nil {
			b.mu.Lock()
			b.err = err
			b.room.Broadcast()
			b.mu.Unlock()
			// A partial write leaves the stream unusable; closing it also
			// wakes the reader (see Read).
			_ = b.closeConn()
			return
		}
	}
}

// Close writes what is queued (waiting at most closeFlushTimeout) and closes
// the connection. It returns the connection's write error, if any. Calling
// it again, or concurrently, is safe.
func (b *bufferedConn) Close() error {
	b.mu.Lock()
	b.closed = true
	b.pending.Signal()
	b.room.Broadcast()
	b.mu.Unlock()

	select {
	case <-b.done:
	case <-time.After(closeFlushTimeout):
	}
	err := b.closeConn() // unblocks a flusher stuck in Write
	<-b.done

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	return err
}
