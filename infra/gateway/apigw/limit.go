package apigw

import (
	"context"
	"errors"
	"sync"
)

// ErrQueueFull is returned by Limiter.Acquire when a function already has
// as many invocations waiting as the queue holds.
var ErrQueueFull = errors.New("invocation queue full")

// Limiter holds each function's concurrent invocations to what its
// container takes: the runtime interface emulator runs one invocation at a
// time and fails every invocation (that one and all later) when a second
// arrives during the first, so the gateway queues instead, as Lambda runs
// a second instance. Each function has PerFunction slots and a queue of
// at most Queue waiting invocations; a wait ends when the caller's context
// does (its timeout).
type Limiter struct {
	PerFunction int // invocations of one function at once; 0 means 1
	Queue       int // invocations of one function waiting; 0 means none wait

	mu  sync.Mutex
	fns map[string]*functionSlots
}

type functionSlots struct {
	slots   chan struct{}
	waiting int // guarded by Limiter.mu
}

// Acquire waits for a slot of function and returns its release. It fails
// with ErrQueueFull at once when the queue is full, or with ctx's error
// when ctx ends first.
func (l *Limiter) Acquire(ctx context.Context, function string) (release func(), err error) {
	fs := l.function(function)
	select {
	case fs.slots <- struct{}{}:
		return func() { <-fs.slots }, nil
	default:
	}
	l.mu.Lock()
	if fs.waiting >= l.Queue {
		l.mu.Unlock()
		return nil, ErrQueueFull
	}
	fs.waiting++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		fs.waiting--
		l.mu.Unlock()
	}()
	select {
	case fs.slots <- struct{}{}:
		return func() { <-fs.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Waiting returns how many invocations of function wait for a slot.
func (l *Limiter) Waiting(function string) int {
	fs := l.function(function)
	l.mu.Lock()
	defer l.mu.Unlock()
	return fs.waiting
}

func (l *Limiter) function(name string) *functionSlots {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fns == nil {
		l.fns = map[string]*functionSlots{}
	}
	fs := l.fns[name]
	if fs == nil {
		fs = &functionSlots{slots: make(chan struct{}, max(l.PerFunction, 1))}
		l.fns[name] = fs
	}
	return fs
}
