// Package batcher groups received messages into batches that close on size
// (in items or in bytes), on age, or when the stream goes quiet, and bounds
// how many are held.
package batcher

import (
	"math"
	"sync"
	"time"
)

// Config says when a batch closes and how many items may be held.
type Config[T any] struct {
	Size    int           // close when this many items are held
	Timeout time.Duration // close this long after the batch's first item
	// Idle closes a batch when no item arrived for this long (0: never).
	// Brokers cap unacknowledged deliveries per client (Mosquitto's
	// max_inflight_messages, 20 by default): once the window is full nothing
	// more arrives until we ack, so waiting out Timeout only adds latency.
	Idle time.Duration
	// Max bounds the items in batches: the open one, those waiting for Next
	// and those handed out and not yet Done; 0 is no bound, and a bound
	// below Size is Size. Items added beyond it wait, in order, until Done
	// makes room.
	Max int
	// MaxBytes, when positive, caps a batch's Weight: an item that would
	// take the open batch over it closes the batch and opens the next, and
	// an item heavier on its own is a batch of its own.
	MaxBytes int
	Weight   func(T) int
}

// Batcher batches items as they are added. Add never blocks, so it can run
// in the MQTT client's dispatch goroutine: a batch is handed on once per
// batch, not once per item, and no goroutine or timer is touched per item.
type Batcher[T any] struct {
	cfg  Config[T]
	wake chan struct{} // holds a token when ready gained a batch or closed was set

	mu      sync.Mutex
	open    []T
	bytes   int       // Weight of open
	opened  time.Time // when open got its first item
	last    time.Time // when open got its newest item
	timer   *time.Timer
	held    int      // items in open, ready and handed out, not yet Done
	waiting queue[T] // items beyond Max, in arrival order
	ready   [][]T
	closed  bool
}

// New returns a batcher for cfg.
func New[T any](cfg Config[T]) *Batcher[T] {
	cfg.Size = max(cfg.Size, 1)
	if cfg.Weight == nil {
		cfg.MaxBytes = 0
	}
	if cfg.Max <= 0 {
		cfg.Max = math.MaxInt
	}
	cfg.Max = max(cfg.Max, cfg.Size)
	b := &Batcher[T]{cfg: cfg, wake: make(chan struct{}, 1)}
	b.timer = time.AfterFunc(time.Hour, b.expire)
	b.timer.Stop()
	return b
}

// Add takes it into the open batch, or queues it while Max items are held.
// It returns false once Close was called: the item was not taken.
func (b *Batcher[T]) Add(it T) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	if b.held >= b.cfg.Max || b.waiting.n > 0 {
		b.waiting.push(it)
		return true
	}
	b.held++
	b.put(it, time.Now())
	return true
}

// put adds it to the open batch; b.mu is held.
func (b *Batcher[T]) put(it T, now time.Time) {
	w := 0
	if b.cfg.MaxBytes > 0 {
		w = b.cfg.Weight(it)
		if len(b.open) > 0 && b.bytes+w > b.cfg.MaxBytes {
			b.emit()
		}
	}
	if len(b.open) == 0 {
		b.open = make([]T, 0, b.cfg.Size)
		b.opened = now
		first := b.cfg.Timeout
		if b.cfg.Idle > 0 {
			first = min(first, b.cfg.Idle)
		}
		b.timer.Reset(first)
	}
	b.open = append(b.open, it)
	b.bytes += w
	b.last = now
	if len(b.open) >= b.cfg.Size || (b.cfg.MaxBytes > 0 && b.bytes >= b.cfg.MaxBytes) {
		b.emit()
	}
}

// expire closes the open batch once its timeout or idle time has passed;
// the timer is set once per batch and moved on here while items still
// arrive, instead of being reset for every item.
func (b *Batcher[T]) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.open) == 0 {
		return
	}
	now := time.Now()
	due := b.opened.Add(b.cfg.Timeout)
	if b.cfg.Idle > 0 {
		due = minTime(due, b.last.Add(b.cfg.Idle))
	}
	if wait := due.Sub(now); wait > 0 {
		b.timer.Reset(wait)
		return
	}
	b.emit()
}

func minTime(a, c time.Time) time.Time {
	if c.Before(a) {
		return c
	}
	return a
}

// emit hands the open batch to Next; b.mu is held.
func (b *Batcher[T]) emit() {
	b.timer.Stop()
	b.ready = append(b.ready, b.open)
	b.open, b.bytes = nil, 0
	b.signal()
}

func (b *Batcher[T]) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Next returns the oldest closed batch, waiting for one. ok is false once
// Close was called and every batch has been handed out.
func (b *Batcher[T]) Next() (batch []T, ok bool) {
	for {
		b.mu.Lock()
		if len(b.ready) > 0 {
			batch = b.ready[0]
			b.ready[0] = nil
			b.ready = b.ready[1:]
			more := len(b.ready) > 0 || b.closed
			b.mu.Unlock()
			if more { // pass the token on to another waiting Next
				b.signal()
			}
			return batch, true
		}
		if b.closed {
			b.mu.Unlock()
			b.signal()
			return nil, false
		}
		b.mu.Unlock()
		<-b.wake
	}
}

// Done reports that n items of batches Next returned are settled (acked, or
// given up), which makes room for items waiting beyond Max.
func (b *Batcher[T]) Done(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held -= n
	if b.waiting.n == 0 {
		return
	}
	now := time.Now()
	for b.waiting.n > 0 && b.held < b.cfg.Max {
		b.held++
		b.put(b.waiting.pop(), now)
	}
}

// Held returns the items added and not yet Done, those waiting beyond Max
// included.
func (b *Batcher[T]) Held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held + b.waiting.n
}

// Close closes the open batch (Next still returns it and the batches before
// it), stops taking items, and drops those waiting beyond Max, which were
// never handed over: they stay unacknowledged and the broker redelivers
// them. It returns how many it dropped.
func (b *Batcher[T]) Close() (dropped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0
	}
	b.closed = true
	if len(b.open) > 0 {
		b.emit()
	}
	b.timer.Stop()
	dropped = b.waiting.n
	b.waiting = queue[T]{}
	b.signal()
	return dropped
}

// queue is a FIFO that reuses its storage: items beyond Max can pile up by
// the ten thousand, and a slice appended at the back and cut at the front
// would keep copying them to fresh arrays.
type queue[T any] struct {
	buf  []T
	head int // index of the oldest item
	n    int
}

func (q *queue[T]) push(v T) {
	if q.n == len(q.buf) {
		buf := make([]T, max(2*len(q.buf), 64))
		k := copy(buf, q.buf[q.head:])
		copy(buf[k:], q.buf[:q.head])
		q.buf, q.head = buf, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
}

func (q *queue[T]) pop() T {
	v := q.buf[q.head]
	var zero T
	q.buf[q.head] = zero
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	if q.n == 0 && len(q.buf) > 4096 { // let a burst's storage go
		*q = queue[T]{}
	}
	return v
}
