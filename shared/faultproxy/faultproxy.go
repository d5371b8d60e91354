// Package faultproxy is a TCP proxy a test can cut, standing between a
// program and a server (PostgreSQL, MongoDB) so that "the server is down"
// needs no stopping of a shared server.
package faultproxy

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards a local port to its target; Cut drops every connection
// through it and refuses new ones until Restore.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

// MustStart starts a Proxy to target that closes when tb ends.
func MustStart(tb testing.TB, target string) *Proxy {
	tb.Helper()
	p, err := New(target)
	if err != nil {
		tb.Fatalf("faultproxy: %v", err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

// New listens on a free local port and forwards to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.accept()
	return p, nil
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut drops every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops the proxy and drops its connections.
func (p *Proxy) Close() error {
	p.Cut()
	return p.ln.Close()
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		_ = c.Close()
	}
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			server, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = client.Close()
				return
			}
			if !p.track(client, server) {
				_ = client.Close()
				_ = server.Close()
				return
			}
			defer p.untrack(client, server)
			// Each direction ends on its own: a side that closes its
			// writing half (a graceful MQTT DISCONNECT) still reads what
			// the other sends, as it would without the proxy.
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(server, client); closeWrite(server); done <- struct{}{} }()
			go func() { _, _ = io.Copy(client, server); closeWrite(client); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

// closeWrite passes an end of stream on, or closes c where it cannot.
func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok && tc.CloseWrite() == nil {
		return
	}
	_ = c.Close()
}
