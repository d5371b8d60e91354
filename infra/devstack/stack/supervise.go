package stack

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Restart backoff of a supervised server: doubling from minRestart to
// maxRestart, back to minRestart once an instance has run healthyAfter.
const (
	minRestart   = 100 * time.Millisecond
	maxRestart   = 10 * time.Second
	healthyAfter = 30 * time.Second
)

// serverRun is one run of a supervised server.
type serverRun struct {
	died <-chan error // yields why it ended when it ends unasked
	stop func()       // ends it, asked; safe to call more than once
	kill func()       // ends it as a crash would (tests)
}

// supervisor keeps a server running: when an instance ends unasked it logs
// that and why, and starts another after a backoff, until Close.
type supervisor struct {
	name     string
	start    func() (*serverRun, error)
	logf     func(format string, args ...any)
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	cur      *serverRun
	restarts atomic.Int64
}

// supervise starts the server's first instance (its error ends devstack's
// start) and watches it.
func supervise(name string, start func() (*serverRun, error), logf func(string, ...any)) (*supervisor, error) {
	in, err := start()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &supervisor{name: name, start: start, logf: logf, ctx: ctx, cancel: cancel, done: make(chan struct{}), cur: in}
	go s.watch(in)
	return s, nil
}

func (s *supervisor) watch(in *serverRun) {
	defer close(s.done)
	backoff := minRestart
	for {
		began := time.Now()
		select {
		case <-s.ctx.Done():
			in.stop()
			return
		case why := <-in.died:
			in.stop()
			if time.Since(began) >= healthyAfter {
				backoff = minRestart
			}
			s.logf("%s stopped unexpectedly (%v); restarting in %s", s.name, why, backoff)
			if in = s.restart(&backoff); in == nil {
				return
			}
		}
	}
}

// restart starts instances, backing off between attempts, until one runs;
// nil once the supervisor is closed.
func (s *supervisor) restart(backoff *time.Duration) *serverRun {
	for {
		select {
		case <-s.ctx.Done():
			return nil
		case <-time.After(*backoff):
		}
		*backoff = min(*backoff*2, maxRestart)
		in, err := s.start()
		if err != nil {
			s.logf("%s did not start again (%v); retrying in %s", s.name, err, *backoff)
			continue
		}
		s.mu.Lock()
		s.cur = in
		s.mu.Unlock()
		n := s.restarts.Add(1)
		s.logf("%s restarted (restart %d)", s.name, n)
		return in
	}
}

// Close stops the server and the watching.
func (s *supervisor) Close() {
	s.cancel()
	<-s.done
}

// killCurrent ends the running instance as a crash would.
func (s *supervisor) killCurrent() {
	s.mu.Lock()
	in := s.cur
	s.mu.Unlock()
	in.kill()
}

// doneRun is an in-process server that closes done when it stops.
func doneRun(done <-chan struct{}, stop func(), what string) *serverRun {
	died := make(chan error, 1)
	go func() { <-done; died <- fmt.Errorf("%s stopped", what) }()
	return &serverRun{died: died, stop: stop, kill: stop}
}
