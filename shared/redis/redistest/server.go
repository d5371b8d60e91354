package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Server is a private redis-server of one test, on a port of its own, for
// fault tests: Kill, Restart, Pause and Resume it without touching the
// shared Redis.
type Server struct {
	tb   testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// MustServer starts a private redis-server (redis-server must be on PATH: a
// missing one fails the test) and stops it when the test ends. Under -short
// the test is skipped.
func MustServer(tb testing.TB) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("redistest: starts a redis-server, so not run with -short (make test-unit)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redistest: redis-server not found (apt-get install -y redis-server): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	s := &Server{tb: tb, port: l.Addr().(*net.TCPAddr).Port, dir: tb.TempDir()}
	_ = l.Close()
	s.start()
	tb.Cleanup(func() {
		s.Resume()
		s.Kill()
	})
	return s
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *Server) start() {
	s.tb.Helper()
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("redistest: start redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			s.tb.Fatalf("redistest: redis-server on port %d exited at start", s.port)
		default:
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redistest: redis-server on port %d did not answer: %v", s.port, err)
		}
		time.Sleep(10 * time.Millisecond) // polling for the server to answer
	}
}

// Kill ends the server at once (SIGKILL) and waits until it is gone, so
// connecting is refused.
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Restart starts the server again, empty, on the same port, after Kill.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	s.start()
}

// Pause stops the server (SIGSTOP): connections are accepted by the kernel
// and nothing answers, a Redis that hangs.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	select {
	case <-s.done:
		return
	default:
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Errorf("redistest: %v to redis-server: %v", sig, err)
	}
}

// String names the server in failure messages.
func (s *Server) String() string { return fmt.Sprintf("private redis-server %s", s.Addr()) }
