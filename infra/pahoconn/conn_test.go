package pahoconn

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
)

// countingConn counts the reads and writes that reach the real connection;
// before, when set, runs before each write (to stand in for a slow syscall).
type countingConn struct {
	net.Conn
	reads, writes atomic.Int64
	before        func()
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	if c.before != nil {
		c.before()
	}
	return c.Conn.Write(p)
}

// mustLoopback connects over 127.0.0.1 and returns the client side, the
// server side, and a channel that receives everything the server side reads
// until the client closes (nil when reading is false).
func mustLoopback(t *testing.T, reading bool) (client, server net.Conn, received <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server = <-accepted
	require.NotNil(t, server)
	t.Cleanup(func() { client.Close(); server.Close() })
	if !reading {
		return client, server, nil
	}
	all := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(server)
		all <- b
	}()
	return client, server, all
}

func mustReceive(t *testing.T, received <-chan []byte) []byte {
	t.Helper()
	select {
	case b := <-received:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("server received nothing in 10s")
		return nil
	}
}

func flusherDone(b *bufferedConn) bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

func TestBufferedConnKeepsEachWritersOrder(t *testing.T) {
	raw, _, received := mustLoopback(t, true)
	c := newBufferedConn(raw)
	const writers, each = 8, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, err := fmt.Fprintf(c, "%d %06d\n", w, i)
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	require.NoError(t, c.Close())

	lines := strings.Split(strings.TrimSuffix(string(mustReceive(t, received)), "\n"), "\n")
	require.Len(t, lines, writers*each)
	next := make([]int, writers)
	for _, l := range lines {
		var w, i int
		_, err := fmt.Sscanf(l, "%d %d", &w, &i)
		require.NoError(t, err, "line %q", l)
		require.Equal(t, next[w], i, "writer %d", w)
		next[w]++
	}
}

func TestBufferedConnCoalescesWrites(t *testing.T) {
	raw, _, received := mustLoopback(t, true)
	counted := &countingConn{Conn: raw, before: func() { time.Sleep(time.Millisecond) }}
	c := newBufferedConn(counted)
	const n = 10000
	var want bytes.Buffer
	for i := range n {
		p := fmt.Appendf(nil, "ack %d;", i)
		want.Write(p)
		_, err := c.Write(p)
		require.NoError(t, err)
	}
	require.NoError(t, c.Close())
	assert.Equal(t, want.String(), string(mustReceive(t, received)))
	assert.Less(t, counted.writes.Load(), int64(n/20), "underlying writes for %d Writes", n)
}

func TestBufferedConnSendsALoneWriteAtOnce(t *testing.T) {
	raw, server, _ := mustLoopback(t, false)
	c := newBufferedConn(raw)
	defer c.Close()
	_, err := c.Write([]byte("ping"))
	require.NoError(t, err)
	require.NoError(t, server.SetReadDeadline(time.Now().Add(5*time.Second)))
	got := make([]byte, 4)
	_, err = io.ReadFull(server, got) // no further Write, no Close
	require.NoError(t, err)
	assert.Equal(t, "ping", string(got))
}

func TestBufferedConnReadsThroughABuffer(t *testing.T) {
	raw, server, _ := mustLoopback(t, false)
	counted := &countingConn{Conn: raw}
	c := newBufferedConn(counted)
	defer c.Close()
	want := bytes.Repeat([]byte("0123456789"), 1000)
	go func() { _, _ = server.Write(want) }()
	got := make([]byte, len(want))
	for i := range got { // byte by byte, as paho reads headers
		_, err := io.ReadFull(c, got[i:i+1])
		require.NoError(t, err)
	}
	assert.Equal(t, want, got)
	assert.Less(t, counted.reads.Load(), int64(len(want)/100))
}

func TestBufferedConnBoundsWhatIsQueued(t *testing.T) {
	raw, _, received := mustLoopback(t, true)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	counted := &countingConn{Conn: raw, before: func() { <-release }} // writes wait for release
	c := newBufferedConn(counted)
	chunk := make([]byte, 1<<10)
	_, err := c.Write(chunk)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return counted.writes.Load() == 1 }, 5*time.Second, time.Millisecond,
		"flusher in its first write")
	total := len(chunk)
	for total < len(chunk)+maxPending { // a full queue behind the stuck write
		_, err := c.Write(chunk)
		require.NoError(t, err)
		total += len(chunk)
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := c.Write(chunk)
		blocked <- err
	}()
	select {
	case err := <-blocked:
		t.Fatalf("Write with %d bytes queued returned %v, want it to wait", total-len(chunk), err)
	case <-time.After(100 * time.Millisecond):
	}
	once.Do(func() { close(release) })
	select {
	case err := <-blocked:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Write still waiting 10s after the flusher resumed")
	}
	require.NoError(t, c.Close())
	assert.Len(t, mustReceive(t, received), total+len(chunk))
}

func TestBufferedConnCloseFlushesAndEndsTheFlusher(t *testing.T) {
	raw, _, received := mustLoopback(t, true)
	c := newBufferedConn(raw)
	want := bytes.Repeat([]byte("x"), 3*maxPending)
	_, err := c.Write(want)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	assert.True(t, flusherDone(c), "flusher still running after Close")
	assert.Equal(t, len(want), len(mustReceive(t, received)))

	_, err = c.Write([]byte("late"))
	require.ErrorIs(t, err, net.ErrClosed)
	assert.NoError(t, c.Close(), "second Close")
}

func TestBufferedConnCloseGivesUpOnAStuckConnection(t *testing.T) {
	raw, _, _ := mustLoopback(t, false) // nobody reads the server side
	c := newBufferedConn(raw)
	_, err := c.Write(make([]byte, 16<<20)) // far beyond the socket buffers
	require.NoError(t, err)
	start := time.Now()
	_ = c.Close() // the stuck write fails: use of closed connection
	assert.Less(t, time.Since(start), closeFlushTimeout+5*time.Second)
	assert.True(t, flusherDone(c), "flusher still running after Close")
}

func TestBufferedConnSurfacesAWriteError(t *testing.T) {
	raw, _, _ := mustLoopback(t, false)
	c := newBufferedConn(raw)
	// A write deadline passes through to the real connection: the
	// flusher's write fails.
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(-time.Second)))
	_, err := c.Write([]byte("lost"))
	require.NoError(t, err, "the first Write only queues")
	require.Eventually(t, func() bool {
		_, err = c.Write([]byte("more"))
		return err != nil
	}, 5*time.Second, time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Eventually(t, func() bool { return flusherDone(c) }, 5*time.Second, time.Millisecond,
		"flusher still running after a write error")

	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "Read after a write error")
	assert.ErrorIs(t, c.Close(), os.ErrDeadlineExceeded, "Close after a write error")
}

func TestBufferedConnectionsOnlyForSchemesItDials(t *testing.T) {
	for _, tc := range []struct {
		name   string
		urls   []string
		proxy  string
		custom bool
	}{
		{"tcp", []string{"tcp://127.0.0.1:1883"}, "", true},
		{"mqtt", []string{"mqtt://127.0.0.1:1883"}, "", true},
		{"tls schemes", []string{"ssl://h:8883", "tls://h:8883", "mqtts://h:8883"}, "", true},
		{"ws", []string{"ws://127.0.0.1:8083/mqtt"}, "", false},
		{"wss among others", []string{"tcp://h:1883", "wss://h:8084/mqtt"}, "", false},
		{"unix", []string{"unix:///run/mqtt.sock"}, "", false},
		{"proxy", []string{"tcp://127.0.0.1:1883"}, "socks5://127.0.0.1:1080", false},
		{"no broker yet", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("ALL_PROXY", tc.proxy)
			t.Setenv("all_proxy", "")
			o := paho.NewClientOptions()
			for _, u := range tc.urls {
				o.AddBroker(u)
			}
			got := Buffered(o).CustomOpenConnectionFn != nil
			assert.Equal(t, tc.custom, got, "Buffered(%v) sets the dial function", tc.urls)
		})
	}
}

// flushers counts the goroutines running a bufferedConn's flusher.
func flushers() int {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	n := 0
	for _, stack := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(stack, "(*bufferedConn).flush") {
			var count int
			_, _ = fmt.Sscanf(stack, "%d @", &count)
			n += count
		}
	}
	return n
}

func TestBufferedConnectionsLeaveNoFlusherAcrossReconnects(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	base := flushers()
	var connects atomic.Int64
	o := paho.NewClientOptions().AddBroker(broker.URL).SetClientID("reconnecting").
		SetAutoReconnect(true).SetMaxReconnectInterval(100 * time.Millisecond).
		SetOnConnectHandler(func(paho.Client) { connects.Add(1) })
	c := paho.NewClient(Buffered(o))
	require.True(t, c.Connect().WaitTimeout(10*time.Second))
	for i := range 5 {
		// Another client with the same id takes the session over: the
		// broker drops the first, which reconnects on a new connection.
		other := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("reconnecting").
			SetAutoReconnect(false))
		require.True(t, other.Connect().WaitTimeout(10*time.Second))
		other.Disconnect(0)
		require.Eventually(t, func() bool { return connects.Load() >= int64(i+2) && c.IsConnectionOpen() },
			10*time.Second, 10*time.Millisecond, "reconnect %d", i+1)
	}
	require.Eventually(t, func() bool { return flushers() == base+1 }, 5*time.Second, 10*time.Millisecond,
		"flushers after 5 reconnects: %d, want %d", flushers(), base+1)
	c.Disconnect(100)
	require.Eventually(t, func() bool { return flushers() == base }, 5*time.Second, 10*time.Millisecond,
		"flushers after Disconnect: %d, want %d", flushers(), base)
}

func TestBufferedConnectionsOverTLS(t *testing.T) {
	broker := mosquittotest.MustStartTLS(t)
	port, roots := broker.TLSPort, broker.Roots

	base := flushers()
	got := make(chan string, 1)
	// No ServerName: dialing must take it from the URL's host, as paho does.
	o := paho.NewClientOptions().AddBroker("ssl://localhost:" + port).SetClientID("tls").
		SetTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	c := paho.NewClient(Buffered(o))
	require.NotNil(t, o.CustomOpenConnectionFn)
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer c.Disconnect(100)
	assert.Equal(t, base+1, flushers(), "buffered connections")

	tok = c.Subscribe("t/tls", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) })
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	tok = c.Publish("t/tls", 1, false, "over tls")
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	select {
	case m := <-got:
		assert.Equal(t, "over tls", m)
	case <-time.After(10 * time.Second):
		t.Fatal("no message back over TLS in 10s")
	}
}
