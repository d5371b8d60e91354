// Package metrics holds the bridge's Prometheus instruments, registered on a
// registry of their own so several bridges (tests) can run in one process.
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Reason classes of refused_total: why the bridge refused a message and
// handed the function only its head, to dead-letter.
const (
	RefusedPayloadTooLarge = "payload_too_large" // over tempwatch.MaxPayloadBytes
	RefusedInvokeTooLarge  = "invoke_too_large"  // the Invoke API refused it alone as too large
	RefusedMaxAttempts     = "max_attempts"      // it kept failing on its own
	RefusedRetained        = "retained"          // a replay of a retained message, not a reading as it was sent
)

// Metrics are the bridge's instruments.
type Metrics struct {
	MessagesIn    prometheus.Counter
	Batches       prometheus.Counter
	Retries       prometheus.Counter
	Acked         prometheus.Counter
	Rejected      prometheus.Counter
	Refused       *prometheus.CounterVec // by reason class
	InvokeLatency prometheus.Histogram
	// Duplicates counts the readings the ingest function reported as
	// already stored (redeliveries, devices sending twice).
	Duplicates prometheus.Counter
	// AckDelay is each message's time from its receipt by the bridge to its
	// ack: the publish-to-stored lag as the bridge sees it.
	AckDelay prometheus.Histogram
	// BatchMessages is the messages per invoked batch.
	BatchMessages prometheus.Histogram
	// BrokerConnected is 1 while subscribed to the broker, else 0.
	BrokerConnected prometheus.Gauge
	// BrokerConnects counts successful (re)connections.
	BrokerConnects prometheus.Counter
	registry       *prometheus.Registry
	inFlight       atomic.Pointer[func() int]
	oldest         atomic.Pointer[func() time.Time]
}

// New returns instruments registered on a fresh registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "tempwatch_bridge", Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{
		MessagesIn: f("messages_in_total", "MQTT messages received."),
		Batches:    f("batches_total", "Batches invoked (every attempt counts)."),
		Retries:    f("retries_total", "Messages sent again after an invoke error, function error or batchItemFailure."),
		Acked:      f("acked_total", "Messages acknowledged to the broker (stored, duplicate or rejected for good)."),
		Rejected:   f("rejected_total", "Messages the ingest function rejected for good (dead-lettered), those the bridge refused included."),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tempwatch_bridge", Name: "refused_total",
			Help: "Messages the bridge refused and sent to be dead-lettered, by reason."}, []string{"reason"}),
		InvokeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "tempwatch_bridge",
			Name: "invoke_duration_seconds", Help: "Ingest function invocation latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		Duplicates: f("duplicates_total", "Readings the ingest function reported as duplicates (already stored)."),
		AckDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "tempwatch_bridge", Name: "ack_delay_seconds",
			Help:    "Time from a message's receipt by the bridge to its acknowledgement (the publish-to-stored lag the bridge sees).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		BatchMessages: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "tempwatch_bridge", Name: "batch_messages",
			Help: "Messages per invoked batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
		BrokerConnected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "tempwatch_bridge", Name: "broker_connected",
			Help: "1 while the bridge is subscribed to the broker, else 0."}),
		BrokerConnects: f("broker_connects_total", "Successful connections (and reconnections) to the broker."),
		registry:       reg,
	}
	// Read at scrape time, so receiving and acking cost the gauge nothing.
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "tempwatch_bridge", Name: "in_flight",
		Help: "Messages received and not yet acknowledged."}, func() float64 {
		if f := m.inFlight.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	})
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "tempwatch_bridge", Name: "oldest_unacked_age_seconds",
		Help: "Age of the oldest message received and not yet acknowledged (0 when none)."}, func() float64 {
		if f := m.oldest.Load(); f != nil {
			if t := (*f)(); !t.IsZero() {
				return time.Since(t).Seconds()
			}
		}
		return 0
	})
	for _, r := range []string{RefusedPayloadTooLarge, RefusedInvokeTooLarge, RefusedMaxAttempts, RefusedRetained} {
		m.Refused.WithLabelValues(r) // every class is scraped from the start, at zero
	}
	reg.MustRegister(inFlight, oldest, m.InvokeLatency, m.AckDelay, m.BatchMessages, m.BrokerConnected, m.Refused, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Register adds instruments defined elsewhere to the bridge's registry.
func (m *Metrics) Register(cs ...prometheus.Collector) { m.registry.MustRegister(cs...) }

// SetInFlight makes the in_flight gauge report f's count.
func (m *Metrics) SetInFlight(f func() int) { m.inFlight.Store(&f) }

// SetOldestUnacked makes the oldest_unacked_age_seconds gauge report the
// age of f's time (zero: none unacknowledged).
func (m *Metrics) SetOldestUnacked(f func() time.Time) { m.oldest.Store(&f) }

// Handler serves the instruments in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
