package replay_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/metrics/replay"
)

// invocation writes the EMF lines of one invocation that recorded with record.
func invocation(t *testing.T, record func(*metrics.Set)) []string {
	t.Helper()
	set := metrics.NewSet()
	record(set)
	var out bytes.Buffer
	require.NoError(t, metrics.WriteEMF(&out, set.Take(), time.Now()))
	return strings.Split(strings.TrimSpace(out.String()), "\n")
}

// family returns the gathered family name, keyed by its label values joined.
func family(t *testing.T, r *replay.Registry, name string) map[string]*dto.Metric {
	t.Helper()
	fams, err := r.Gatherer().Gather()
	require.NoError(t, err)
	out := map[string]*dto.Metric{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var vs []string
			for _, l := range m.GetLabel() {
				vs = append(vs, l.GetValue())
			}
			out[strings.Join(vs, ",")] = m
		}
	}
	return out
}

// TestRegistrySumsInvocations: what a Registry serves is the sum of the
// invocations it was fed, whichever instance wrote them; log lines and
// lines that are not ours change nothing.
func TestRegistrySumsInvocations(t *testing.T) {
	r := replay.NewRegistry()
	var lines []string
	for _, n := range []float64{3, 4} { // two instances' invocations
		lines = append(lines, invocation(t, func(s *metrics.Set) {
			s.Add(metrics.IngestReadings, n, "acme", "stored", "none")
			s.Add(metrics.IngestReadings, 1, "acme", "rejected", "too_old")
			s.Observe(metrics.IngestBatchDuration, 0.01*n, "bridge")
		})...)
	}
	lines = append(lines, `{"time":"2026-12-02T05:00:00Z","level":"INFO","msg":"request"}`, `not json`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"other","Dimensions":[["source"]],"Metrics":[{"Name":"tempwatch_ingest_batch_duration_seconds"}]}]},"source":"sqs","tempwatch_ingest_batch_duration_seconds":1}`)
	applied := 0
	for _, l := range lines {
		if r.ApplyLine([]byte(l)) {
			applied++
		}
	}
	assert.Equal(t, len(lines)-2, applied, "every EMF line, the other namespace's too, and no log line")

	readings := family(t, r, "tempwatch_ingest_readings_total")
	require.Contains(t, readings, "acme,stored,none")
	assert.Equal(t, 7.0, readings["acme,stored,none"].GetCounter().GetValue())
	assert.Equal(t, 2.0, readings["acme,rejected,too_old"].GetCounter().GetValue())
	batches := family(t, r, "tempwatch_ingest_batch_duration_seconds")
	require.Contains(t, batches, "bridge")
	assert.Equal(t, uint64(2), batches["bridge"].GetHistogram().GetSampleCount())
	assert.InDelta(t, 0.07, batches["bridge"].GetHistogram().GetSampleSum(), 1e-9)
	assert.NotContains(t, batches, "sqs", "another namespace's document adds nothing")
}

// A counter never goes down: a negative count in a document is ignored.
func TestRegistryIgnoresNegativeCounts(t *testing.T) {
	r := replay.NewRegistry()
	r.Apply([]metrics.Series{
		{Def: metrics.IngestReadings, Labels: []string{"acme", "stored", "none"}, Sum: 5},
		{Def: metrics.IngestReadings, Labels: []string{"acme", "stored", "none"}, Sum: -3},
	})
	assert.Equal(t, 5.0, family(t, r, "tempwatch_ingest_readings_total")["acme,stored,none"].GetCounter().GetValue())
}
