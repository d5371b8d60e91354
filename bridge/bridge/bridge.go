package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tempwatch/tempwatch/bridge/batcher"
	"github.com/tempwatch/tempwatch/bridge/delivery"
	"github.com/tempwatch/tempwatch/bridge/invoker"
	"github.com/tempwatch/tempwatch/bridge/metrics"
	"github.com/tempwatch/tempwatch/bridge/mqtt"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Bridge moves MQTT messages to the ingest function.
type Bridge struct {
	cfg     Config
	invoke  delivery.InvokeFunc
	log     *slog.Logger
	metrics *metrics.Metrics
	ready   atomic.Bool
	addr    chan string
}

// New returns a bridge that delivers through invoke.
func New(cfg Config, invoke delivery.InvokeFunc, log *slog.Logger) *Bridge {
	return &Bridge{cfg: cfg, invoke: invoke, log: log, metrics: metrics.New(), addr: make(chan string, 1)}
}

// Metrics returns the bridge's instruments.
func (b *Bridge) Metrics() *metrics.Metrics { return b.metrics }

// MetricsAddr returns the address /metrics and /healthz listen on once the
// bridge is subscribed (useful when METRICS_ADDR picks a free port).
func (b *Bridge) MetricsAddr(ctx context.Context) (string, error) {
	select {
	case a := <-b.addr:
		b.addr <- a
		return a, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Run connects, subscribes and delivers until ctx ends, then shuts down
// gracefully: it stops taking messages, delivers and acks the open batch and
// what is in flight (for at most ShutdownTimeout), and disconnects.
func (b *Bridge) Run(ctx context.Context) error {
	if b.cfg.CPUProfile != "" {
		stop, err := startCPUProfile(b.cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	srv, addr, err := b.serveMetrics()
	if err != nil {
		return err
	}
	defer srv.Close()
	b.cfg.checkBroker(b.metrics, b.log)

	// The batcher bounds the messages in batches at MaxInFlight; what
	// arrives beyond that waits in it, unacknowledged, until acks make
	// room. handle runs in the goroutine reading the broker connection and
	// never blocks, so reading (keepalives included) goes on while the
	// function is slow.
	batches := batcher.New(batcher.Config[item]{Size: b.cfg.BatchSize, Timeout: b.cfg.BatchTimeout,
		Idle: b.cfg.BatchIdle, Max: b.cfg.MaxInFlight,
		MaxBytes: b.cfg.BatchMaxBytes - invoker.RequestOverhead,
		Weight:   func(it item) int { return invoker.EncodedSize(it.Message) }})
	b.metrics.SetInFlight(batches.Held)
	pending := newUnacked()
	b.metrics.SetOldestUnacked(pending.oldest)
	var seq atomic.Uint64
	handle := func(m mqtt.Message) {
		b.metrics.MessagesIn.Inc()
		msg := b.admit(m, strconv.FormatUint(seq.Add(1), 36))
		pending.add(msg)
		// After Close the message is not taken: unacked, the broker
		// redelivers it to the next session.
		if !batches.Add(item{Message: msg, Receipt: m.Ack}) {
			pending.remove(msg.ID)
		}
	}
	sub, err := mqtt.Subscribe(mqtt.Options{
		URL: b.cfg.MQTTURL, ClientID: b.cfg.MQTTClientID, Topic: b.cfg.MQTTTopic, SharedGroup: b.cfg.SharedGroup,
		CleanSession: b.cfg.CleanSession, Username: b.cfg.MQTTUsername, Password: b.cfg.MQTTPassword, Log: b.log,
		ReadPause: b.cfg.ReadPause(), MaxPayload: tempwatch.MaxPayloadBytes, HeadBytes: tempwatch.RefusedHeadBytes,
		OnConnect:    func(bool) { b.metrics.BrokerConnects.Inc(); b.metrics.BrokerConnected.Set(1) },
		OnDisconnect: func() { b.metrics.BrokerConnected.Set(0) },
	}, handle)
	if err != nil {
		return err
	}
	b.ready.Store(true)
	b.addr <- addr
	b.log.Info("bridge running", "filter", mqtt.Options{Topic: b.cfg.MQTTTopic, SharedGroup: b.cfg.SharedGroup}.Filter(),
		"function", b.cfg.Function, "batch_size", b.cfg.BatchSize, "batch_timeout", b.cfg.BatchTimeout,
		"max_in_flight", b.cfg.MaxInFlight, "workers", b.cfg.Workers(), "batch_max_bytes", b.cfg.BatchMaxBytes,
		"max_attempts", b.cfg.MaxAttempts)

	// Deliveries outlive ctx by ShutdownTimeout so the open batch and the
	// batches in flight can still be stored and acked.
	deliverCtx, cancelDeliver := context.WithCancel(context.Background())
	defer cancelDeliver()
	d := &delivery.Deliverer[mqtt.Ack]{Invoke: b.invoke, Metrics: b.metrics, Log: b.log,
		Ack:             func(items []item) { ackAll(items); batches.Done(len(items)); pending.done(items) },
		Backoff:         delivery.Backoff{Base: b.cfg.RetryBase, Max: b.cfg.RetryMax},
		IsFunctionError: func(err error) bool { var fe *invoker.FunctionError; return errors.As(err, &fe) },
		IsTooLarge:      func(err error) bool { return errors.Is(err, invoker.ErrTooLarge) },
		MaxAttempts:     b.cfg.MaxAttempts, Concurrency: b.cfg.Workers()}
	// Every batch is delivered in a goroutine of its own, bounded by the
	// batcher's MaxInFlight; the Deliverer bounds the invocations. A batch
	// waiting out a backoff holds no invocation slot, so batches the
	// function keeps failing on do not stop the others.
	var deliveries sync.WaitGroup
	deliveries.Go(func() {
		for batch, ok := batches.Next(); ok; batch, ok = batches.Next() {
			deliveries.Go(func() {
				if err := d.Deliver(deliverCtx, batch); err != nil {
					b.log.Warn("shutdown left messages unacknowledged; the broker will redeliver them", "messages", len(batch))
				}
			})
		}
	})

	<-ctx.Done()
	b.log.Info("bridge shutting down")
	b.ready.Store(false)
	if n := batches.Close(); n > 0 {
		b.log.Info("left messages beyond MAX_IN_FLIGHT unacknowledged; the broker will redeliver them", "messages", n)
	}
	done := make(chan struct{})
	go func() { deliveries.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(b.cfg.ShutdownTimeout):
		cancelDeliver()
		<-done
	}
	sub.Close(250 * time.Millisecond)
	b.log.Info("bridge stopped")
	return nil
}

// admit turns a message from the broker into the ingest contract's, under
// id; one over the payload limit or replayed from the retained store is
// refused here, before batching, and goes to the dead letters.
func (b *Bridge) admit(m mqtt.Message, id string) tempwatch.Message {
	msg := tempwatch.Message{ID: id, Topic: m.Topic, Payload: m.Payload, ReceivedAt: time.Now().UTC()}
	switch {
	case m.Size > tempwatch.MaxPayloadBytes:
		// It would take a batch over the invoke limit, and its whole is
		// not kept (m.Payload is its head).
		b.metrics.Refused.WithLabelValues(metrics.RefusedPayloadTooLarge).Inc()
		b.log.Warn("refused a message over the payload limit; it goes to the dead letters", "id", id, "topic", m.Topic, "size", m.Size)
		return delivery.Refuse(msg, m.Size, fmt.Sprintf("payload is %d bytes, over the %d-byte limit", m.Size, tempwatch.MaxPayloadBytes))
	case m.Retained:
		// The broker replays a retained message to every new subscription:
		// stored again, one without a timestamp would be a new reading each
		// time the bridge subscribes.
		b.metrics.Refused.WithLabelValues(metrics.RefusedRetained).Inc()
		b.log.Warn("refused a retained message replayed by the broker; it goes to the dead letters", "id", id, "topic", m.Topic)
		return delivery.Refuse(msg, m.Size, "retained message replayed by the broker: readings are taken as they are published, not from the retained store")
	}
	return msg
}

// item is a message on its way, with the broker's receipt for it.
type item = delivery.Item[mqtt.Ack]

// unacked is the receipt times of the messages received and not yet
// acknowledged, by id, for the oldest_unacked_age_seconds gauge.
type unacked struct {
	mu sync.Mutex
	at map[string]time.Time
}

func newUnacked() *unacked { return &unacked{at: map[string]time.Time{}} }

func (u *unacked) add(m tempwatch.Message) {
	u.mu.Lock()
	u.at[m.ID] = m.ReceivedAt
	u.mu.Unlock()
}

func (u *unacked) remove(id string) {
	u.mu.Lock()
	delete(u.at, id)
	u.mu.Unlock()
}

func (u *unacked) done(items []item) {
	u.mu.Lock()
	for _, it := range items {
		delete(u.at, it.Message.ID)
	}
	u.mu.Unlock()
}

// oldest is the earliest receipt held, or zero: read at scrape time, so
// the walk over at most the messages in flight costs receiving nothing.
func (u *unacked) oldest() time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	var first time.Time
	for _, t := range u.at {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}

// ackAll acknowledges items to the broker.
func ackAll(items []item) {
	acks := make([]mqtt.Ack, len(items))
	for i, it := range items {
		acks[i] = it.Receipt
	}
	mqtt.AckAll(acks)
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func (b *Bridge) serveMetrics() (*http.Server, string, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", b.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !b.ready.Load() {
			http.Error(w, "not connected", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	ln, err := net.Listen("tcp", b.cfg.MetricsAddr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics listener on %s: %w", b.cfg.MetricsAddr, err)
	}
	addr := ln.Addr().String()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("metrics server stopped", "error", err)
		}
	}()
	return srv, addr, nil
}
