// Package replay turns the functions' Embedded Metric Format lines back
// into Prometheus metrics (client_golang): each document's counts are
// added to counters and its observations to histograms, so what a
// Registry serves is the sum of every invocation it was fed, across
// instances. devstack feeds one from its function instances' output.
//
// It is apart from package metrics so that the functions, which only write
// EMF, do not link and initialise client_golang.
package replay

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tempwatch/tempwatch/shared/metrics"
)

// Registry is the functions' instruments as client_golang collectors.
type Registry struct {
	reg        *prometheus.Registry
	counters   map[*metrics.Def]*prometheus.CounterVec
	histograms map[*metrics.Def]*prometheus.HistogramVec
}

// NewRegistry returns a Registry of every metrics.Defs instrument, at zero.
func NewRegistry() *Registry {
	r := &Registry{reg: prometheus.NewRegistry(),
		counters: map[*metrics.Def]*prometheus.CounterVec{}, histograms: map[*metrics.Def]*prometheus.HistogramVec{}}
	for _, d := range metrics.Defs {
		switch d.Kind {
		case metrics.Counter:
			c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: d.Name, Help: d.Help}, d.Labels)
			r.reg.MustRegister(c)
			r.counters[d] = c
		case metrics.Histogram:
			h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: d.Name, Help: d.Help, Buckets: d.Buckets}, d.Labels)
			r.reg.MustRegister(h)
			r.histograms[d] = h
		}
	}
	return r
}

// Apply adds series to the metrics.
func (r *Registry) Apply(series []metrics.Series) {
	for _, s := range series {
		if c := r.counters[s.Def]; c != nil && s.Sum >= 0 {
			c.WithLabelValues(s.Labels...).Add(s.Sum)
		}
		if h := r.histograms[s.Def]; h != nil {
			o := h.WithLabelValues(s.Labels...)
			for _, v := range s.Values {
				o.Observe(v)
			}
		}
	}
}

// ApplyLine applies line when it is an EMF document and reports whether it
// was one; other lines (logs) are left alone.
func (r *Registry) ApplyLine(line []byte) bool {
	if !metrics.IsEMF(line) {
		return false
	}
	series, err := metrics.ParseEMF(line)
	if err != nil {
		return false
	}
	r.Apply(series)
	return true
}

// Gatherer is the registry, for tests and other handlers.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Handler serves the metrics in Prometheus' text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
