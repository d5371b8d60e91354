package httpapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// metricsRouter is a Router of two routes, one failing, behind Wrap.
func metricsRouter() http.Handler {
	log := slog.New(slog.DiscardHandler)
	rt := httpapi.NewRouter(log)
	rt.Public("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) error {
		httpapi.JSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
		return nil
	})
	rt.Public("POST /things/{id}/boom", func(http.ResponseWriter, *http.Request) error {
		return tempwatch.Errorf(tempwatch.EINTERNAL, "boom")
	})
	rt.Public("GET /files/{name...}", func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(http.StatusNotModified)
		return nil
	})
	return httpapi.Wrap(log, rt)
}

func TestWrapRecordsRequestsByRoutePattern(t *testing.T) {
	h := metricsRouter()
	set := metrics.NewSet()
	for _, req := range []struct{ method, path string }{
		{"GET", "/things/1"}, {"GET", "/things/2"}, {"GET", "/things/1?x=%zz"},
		{"POST", "/things/3/boom"}, {"GET", "/files/a/b.css"}, {"GET", "/no/such/route"}, {"BREW", "/things/1"},
	} {
		r := httptest.NewRequest(req.method, req.path, nil)
		h.ServeHTTP(httptest.NewRecorder(), r.WithContext(metrics.WithSet(r.Context(), set)))
	}
	got := map[string]float64{}
	durations := map[string]int{}
	for _, s := range set.Snapshot() {
		require.Equal(t, metrics.Function(), s.Labels[0])
		switch s.Def {
		case metrics.HTTPRequests:
			got[s.Labels[1]+" "+s.Labels[2]+" "+s.Labels[3]] = s.Sum
		case metrics.HTTPDuration:
			durations[s.Labels[1]+" "+s.Labels[2]] = len(s.Values)
			for _, v := range s.Values {
				assert.Positive(t, v)
				assert.Less(t, v, float64(time.Minute/time.Second))
			}
		}
	}
	assert.Equal(t, map[string]float64{
		"/things/{id} GET 2xx":       2,
		"/things/{id} GET 4xx":       1, // the malformed query
		"/things/{id}/boom POST 5xx": 1,
		"/files/{name} GET 3xx":      1,
		"unmatched GET 4xx":          1,
		"unmatched other 4xx":        1, // a made-up method is no label value of its own
	}, got)
	assert.Equal(t, map[string]int{"/things/{id} GET": 3, "/things/{id}/boom POST": 1, "/files/{name} GET": 1,
		"unmatched GET": 1, "unmatched other": 1}, durations)
}

// BenchmarkWrapMetrics is Wrap's cost per request with the metrics (a Set
// per request, as an invocation has, written as EMF) and, in the same run,
// the same handler whose recordings are dropped (no Set): compare the two
// sub-benchmarks (docs/benchmarks.md).
func BenchmarkWrapMetrics(b *testing.B) {
	h := metricsRouter()
	r := httptest.NewRequest("GET", "/things/1", nil)
	b.Run("without", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(discardWriter{}, r)
		}
	})
	b.Run("with", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			set := metrics.NewSet()
			h.ServeHTTP(discardWriter{}, r.WithContext(metrics.WithSet(r.Context(), set)))
			_ = metrics.WriteEMF(io.Discard, set.Take(), time.Now())
		}
	})
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}
