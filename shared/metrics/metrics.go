// Package metrics holds the functions' instruments (the metric names of
// docs and dashboards) and carries each invocation's values to where they
// are published.
//
// A function records into the Set of its invocation (From(ctx)): counts are
// summed, durations kept as the observed values. At the end of the
// invocation shared/lambdahttp writes that Set as CloudWatch Embedded
// Metric Format to stdout (WriteEMF), the values of that invocation only,
// which is how Lambda publishes metrics without an agent or a scrape.
//
// Prometheus reads the same lines: package replay (client_golang) turns EMF
// documents back into counters and histograms. devstack already reads every
// function instance's output, so it feeds one registry from there and
// serves all instances merged at its MetricsURL; having each process serve
// /metrics instead would leave Lambda out (an instance cannot be scraped)
// and make devstack find and scrape every instance. One path, the EMF line,
// is then the source of truth on Lambda and locally. Where functions run as
// long-lived containers that Prometheus reaches (docker-compose.yml),
// shared/lambdahttp also replays each invocation's values into a registry
// of the process and serves it on METRICS_ADDR: the same values, summed.
//
// Outside an invocation (tests, benchmarks, a handler served without the
// Lambda adapter) nothing is recorded.
package metrics

import (
	"context"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind says how a metric's values add up.
type Kind int

const (
	// Counter values are summed: an invocation publishes its sum.
	Counter Kind = iota
	// Histogram values are observations: an invocation publishes each.
	Histogram
)

// Def is one metric: its Prometheus name, help and label names, and its
// CloudWatch unit.
type Def struct {
	Name    string
	Help    string
	Kind    Kind
	Unit    string // CloudWatch unit: Count or Seconds
	Labels  []string
	Buckets []float64 // Histogram only
}

// durationBuckets covers a cached read (a millisecond) to a slow batch.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// The instruments (docs/metrics contract). Label values are passed in
// Labels order.
var (
	HTTPRequests = &Def{Name: "tempwatch_http_requests_total", Kind: Counter, Unit: "Count",
		Help:   "HTTP requests served, by route pattern, method and status class.",
		Labels: []string{"function", "route", "method", "code"}}
	HTTPDuration = &Def{Name: "tempwatch_http_request_duration_seconds", Kind: Histogram, Unit: "Seconds",
		Help:   "Time to serve an HTTP request, by route pattern and method.",
		Labels: []string{"function", "route", "method"}, Buckets: durationBuckets}
	IngestReadings = &Def{Name: "tempwatch_ingest_readings_total", Kind: Counter, Unit: "Count",
		Help:   "Ingested messages by client, outcome (stored, duplicate, rejected) and rejection reason.",
		Labels: []string{"client", "outcome", "reason"}}
	IngestBatchDuration = &Def{Name: "tempwatch_ingest_batch_duration_seconds", Kind: Histogram, Unit: "Seconds",
		Help:   "Time to ingest one batch, by source (bridge, sqs, http).",
		Labels: []string{"source"}, Buckets: durationBuckets}
	CacheRequests = &Def{Name: "tempwatch_cache_requests_total", Kind: Counter, Unit: "Count",
		Help:   "Cache lookups by cache and result (hit, miss, degraded: answered without Redis).",
		Labels: []string{"function", "cache", "result"}}
	RedisDegraded = &Def{Name: "tempwatch_redis_degraded_total", Kind: Counter, Unit: "Count",
		Help:   "Redis operations answered without Redis (unreachable, timed out or skipped in backoff), by operation.",
		Labels: []string{"function", "operation"}}
	AlarmsOpened = &Def{Name: "tempwatch_alarms_opened_total", Kind: Counter, Unit: "Count",
		Help:   "Alarms opened, by kind (high, low, silent).",
		Labels: []string{"kind"}}
)

// Defs is every instrument, the ones a Registry knows.
var Defs = []*Def{HTTPRequests, HTTPDuration, IngestReadings, IngestBatchDuration, CacheRequests, RedisDegraded, AlarmsOpened}

func defByName(name string) *Def {
	for _, d := range Defs {
		if d.Name == name {
			return d
		}
	}
	return nil
}

var function atomic.Pointer[string]

// SetFunction names the process's function: the function label of what it
// records. Mains set it once, through app.Load.
func SetFunction(name string) { function.Store(&name) }

// Function is the name SetFunction set, or "unknown".
func Function() string {
	if p := function.Load(); p != nil {
		return *p
	}
	return "unknown"
}

// Set is the values recorded during one invocation. It is safe for
// concurrent use: a batch records from several goroutines.
type Set struct {
	mu     sync.Mutex
	series map[string]*Series
}

// Series is one metric with one set of label values, and what was recorded
// for it: Sum for a Counter, Values for a Histogram.
type Series struct {
	Def    *Def
	Labels []string
	Sum    float64
	Values []float64
}

// NewSet returns an empty Set.
func NewSet() *Set { return &Set{} }

// Add adds v to counter d with labels (in d.Labels order).
func (s *Set) Add(d *Def, v float64, labels ...string) {
	if s == nil || v == 0 {
		return
	}
	s.mu.Lock()
	s.get(d, labels).Sum += v
	s.mu.Unlock()
}

// Observe records v for histogram d with labels.
func (s *Set) Observe(d *Def, v float64, labels ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	sr := s.get(d, labels)
	sr.Values = append(sr.Values, v)
	s.mu.Unlock()
}

func (s *Set) get(d *Def, labels []string) *Series {
	var b strings.Builder
	b.WriteString(d.Name)
	for _, l := range labels {
		b.WriteByte(0)
		b.WriteString(l)
	}
	k := b.String()
	sr := s.series[k]
	if sr == nil {
		if s.series == nil {
			s.series = map[string]*Series{}
		}
		sr = &Series{Def: d, Labels: append([]string(nil), labels...)}
		s.series[k] = sr
	}
	return sr
}

// Take empties s and returns what it held, ordered by name and labels.
func (s *Set) Take() []Series {
	s.mu.Lock()
	m := s.series
	s.series = nil
	s.mu.Unlock()
	return sorted(m)
}

// Snapshot returns what s holds, ordered by name and labels, leaving it.
func (s *Set) Snapshot() []Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := sorted(s.series)
	for i := range out {
		out[i].Values = append([]float64(nil), out[i].Values...)
	}
	return out
}

func sorted(m map[string]*Series) []Series {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Series, len(keys))
	for i, k := range keys {
		out[i] = *m[k]
	}
	return out
}

type setKey struct{}

// WithSet returns ctx whose recordings go to s.
func WithSet(ctx context.Context, s *Set) context.Context { return context.WithValue(ctx, setKey{}, s) }

// From is the Set of ctx's invocation, or nil outside one: what is
// recorded there is dropped (a nil Set records nothing), so a test or a
// benchmark serving a handler without an invocation holds nothing for
// nobody. Background work of an invocation keeps its context's values
// (context.WithoutCancel does) and so its Set.
func From(ctx context.Context) *Set {
	s, _ := ctx.Value(setKey{}).(*Set)
	return s
}

// Add adds v to counter d in ctx's Set.
func Add(ctx context.Context, d *Def, v float64, labels ...string) { From(ctx).Add(d, v, labels...) }

// Observe records v for histogram d in ctx's Set.
func Observe(ctx context.Context, d *Def, v float64, labels ...string) {
	From(ctx).Observe(d, v, labels...)
}

// Since records the seconds since start for histogram d in ctx's Set.
func Since(ctx context.Context, d *Def, start time.Time, labels ...string) {
	Observe(ctx, d, time.Since(start).Seconds(), labels...)
}
