package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tempwatch/tempwatch/bridge/batcher"
	"github.com/tempwatch/tempwatch/bridge/delivery"
	"github.com/tempwatch/tempwatch/bridge/invoker"
	"github.com/tempwatch/tempwatch/bridge/metrics"
	"github.com/tempwatch/tempwatch/bridge/mqtt"
	"github.com/tempwatch/tempwatch/shared/telemetry"
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
	srv, addr, err := b.serveMetrics()
	if err != nil {
		return err
	}
	defer srv.Close()

	// slots bounds the messages held unacknowledged; a handler waits for a
	// slot in its own goroutine (paho runs each handler in one when order
	// does not matter), which pushes back on the broker's in-flight window
	// without stalling paho's network loop or keepalives.
	slots := make(chan struct{}, b.cfg.MaxInFlight)
	in := make(chan batcher.Item, b.cfg.BatchSize)
	var seq atomic.Uint64
	intake, stopIntake := context.WithCancel(context.Background())
	defer stopIntake()
	handle := func(m mqtt.Message) {
		select {
		case slots <- struct{}{}:
		case <-intake.Done():
			return // unacked: the broker redelivers it to the next session
		}
		b.metrics.MessagesIn.Inc()
		b.metrics.InFlight.Inc()
		var once sync.Once
		item := batcher.Item{
			Message: telemetry.Message{ID: strconv.FormatUint(seq.Add(1), 36), Topic: m.Topic, Payload: m.Payload, ReceivedAt: time.Now().UTC()},
			Ack: func() {
				once.Do(func() {
					m.Ack()
					b.metrics.InFlight.Dec()
					<-slots
				})
			},
		}
		select {
		case in <- item:
		case <-intake.Done():
			b.metrics.InFlight.Dec()
			<-slots
		}
	}
	sub, err := mqtt.Subscribe(mqtt.Options{
		URL: b.cfg.MQTTURL, ClientID: b.cfg.MQTTClientID, Topic: b.cfg.MQTTTopic, SharedGroup: b.cfg.SharedGroup,
		CleanSession: b.cfg.CleanSession, Username: b.cfg.MQTTUsername, Password: b.cfg.MQTTPassword, Log: b.log,
	}, handle)
	if err != nil {
		return err
	}
	b.ready.Store(true)
	b.addr <- addr
	b.log.Info("bridge running", "filter", mqtt.Options{Topic: b.cfg.MQTTTopic, SharedGroup: b.cfg.SharedGroup}.Filter(),
		"function", b.cfg.Function, "batch_size", b.cfg.BatchSize, "batch_timeout", b.cfg.BatchTimeout,
		"max_in_flight", b.cfg.MaxInFlight, "workers", b.cfg.Workers())

	// Deliveries outlive ctx by ShutdownTimeout so the open batch and the
	// batches in flight can still be stored and acked.
	deliverCtx, cancelDeliver := context.WithCancel(context.Background())
	defer cancelDeliver()
	d := &delivery.Deliverer{Invoke: b.invoke, Metrics: b.metrics, Log: b.log,
		Backoff:         delivery.Backoff{Base: b.cfg.RetryBase, Max: b.cfg.RetryMax},
		IsFunctionError: func(err error) bool { var fe *invoker.FunctionError; return errors.As(err, &fe) },
		SplitAfter:      3}
	batches := make(chan []batcher.Item)
	var workers sync.WaitGroup
	for range b.cfg.Workers() {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for batch := range batches {
				if err := d.Deliver(deliverCtx, batch); err != nil {
					b.log.Warn("shutdown left messages unacknowledged; the broker will redeliver them", "messages", len(batch))
				}
			}
		}()
	}
	batched := make(chan struct{})
	go func() {
		defer close(batched)
		batcher.Run(intake, batcher.Config{Size: b.cfg.BatchSize, Timeout: b.cfg.BatchTimeout, Idle: b.cfg.BatchIdle}, in, batches)
	}()

	<-ctx.Done()
	b.log.Info("bridge shutting down")
	b.ready.Store(false)
	stopIntake()
	<-batched
	close(batches)
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
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
