package metrics_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/metrics"
)

// emfDoc is an Embedded Metric Format document as the specification
// defines it: the root's _aws metadata (Timestamp in ms, CloudWatchMetrics
// directives of Namespace, Dimensions as sets of root keys, Metrics naming
// root members) and the root members themselves.
type emfDoc struct {
	root map[string]json.RawMessage
	meta struct {
		Timestamp         *int64
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []struct{ Name, Unit string }
		}
	}
}

// checkEMF decodes line and checks it against the specification's rules.
func checkEMF(t *testing.T, line string) emfDoc {
	t.Helper()
	var d emfDoc
	require.NoError(t, json.Unmarshal([]byte(line), &d.root), "a document is one JSON object with nothing around it")
	dec := json.NewDecoder(bytes.NewReader(d.root["_aws"]))
	dec.DisallowUnknownFields() // the metadata object holds no other members
	require.NoError(t, dec.Decode(&d.meta))
	require.NotNil(t, d.meta.Timestamp, "Timestamp is required")
	require.NotEmpty(t, d.meta.CloudWatchMetrics)
	units := map[string]bool{"Seconds": true, "Count": true}
	for _, dir := range d.meta.CloudWatchMetrics {
		assert.NotEmpty(t, dir.Namespace)
		assert.NotEmpty(t, dir.Metrics)
		assert.LessOrEqual(t, len(dir.Metrics), 100, "at most 100 metrics per directive")
		for _, set := range dir.Dimensions {
			assert.LessOrEqual(t, len(set), 30, "at most 30 dimensions per set")
			for _, k := range set {
				var v string
				require.NoError(t, json.Unmarshal(d.root[k], &v), "dimension %s is a string member of the root", k)
				assert.NotEmpty(t, v, "dimension %s", k)
			}
		}
		for _, m := range dir.Metrics {
			assert.True(t, units[m.Unit], "unit %q", m.Unit)
			raw := d.root[m.Name]
			require.NotNil(t, raw, "metric %s is a member of the root", m.Name)
			var n float64
			var ns []float64
			if json.Unmarshal(raw, &n) != nil {
				require.NoError(t, json.Unmarshal(raw, &ns), "metric %s is a number or an array of numbers", m.Name)
				assert.LessOrEqual(t, len(ns), 100, "at most 100 values per metric")
			}
		}
	}
	return d
}

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

func TestWriteEMFOneRequestIsOneDocument(t *testing.T) {
	set := metrics.NewSet()
	set.Add(metrics.HTTPRequests, 1, "sensors", "/sensors/{id}", "GET", "2xx")
	set.Observe(metrics.HTTPDuration, 0.012, "sensors", "/sensors/{id}", "GET")
	set.Add(metrics.CacheRequests, 2, "sensors", "latest", "hit")
	var out bytes.Buffer
	at := time.UnixMilli(1_700_000_000_123)
	require.NoError(t, metrics.WriteEMF(&out, set.Take(), at))

	ls := lines(out.String())
	require.Len(t, ls, 1, "one line: %s", out.String())
	d := checkEMF(t, ls[0])
	assert.Equal(t, int64(1_700_000_000_123), *d.meta.Timestamp)
	assert.JSONEq(t, `1`, string(d.root["tempwatch_http_requests_total"]), "a count is the invocation's sum")
	assert.JSONEq(t, `[0.012]`, string(d.root["tempwatch_http_request_duration_seconds"]), "a duration is its values")
	assert.JSONEq(t, `2`, string(d.root["tempwatch_cache_requests_total"]))
	assert.JSONEq(t, `"/sensors/{id}"`, string(d.root["route"]))
	assert.JSONEq(t, `"2xx"`, string(d.root["code"]))
	assert.Empty(t, set.Take(), "written values are gone: the next invocation starts at zero")
}

func TestWriteEMFSplitsConflictingLabelsAndLongValueLists(t *testing.T) {
	set := metrics.NewSet()
	set.Add(metrics.IngestReadings, 3, "acme", "stored", "none")
	set.Add(metrics.IngestReadings, 1, "acme", "rejected", "too_old")
	set.Add(metrics.IngestReadings, 2, "globex", "duplicate", "none")
	for i := range 250 {
		set.Observe(metrics.IngestBatchDuration, float64(i)/1000, "bridge")
	}
	var out bytes.Buffer
	require.NoError(t, metrics.WriteEMF(&out, set.Snapshot(), time.Now()))
	ls := lines(out.String())
	require.Len(t, ls, 3, "three ingest series with different values of client and outcome: %s", out.String())

	var sum float64
	var values int
	for _, l := range ls {
		checkEMF(t, l)
		got, err := metrics.ParseEMF([]byte(l))
		require.NoError(t, err)
		for _, s := range got {
			sum += s.Sum
			values += len(s.Values)
		}
	}
	assert.Equal(t, 6.0, sum)
	assert.Equal(t, 250, values, "every observation is kept, over three documents of at most 100")
}

func TestEMFRoundTrip(t *testing.T) {
	set := metrics.NewSet()
	set.Add(metrics.RedisDegraded, 4, "readings", "latest.get")
	set.Add(metrics.HTTPRequests, 1, "readings", "/sensors/{id}/readings/latest", "GET", "5xx")
	set.Observe(metrics.HTTPDuration, 0.5, "readings", "/sensors/{id}/readings/latest", "GET")
	want := set.Snapshot()
	var out bytes.Buffer
	require.NoError(t, metrics.WriteEMF(&out, want, time.Now()))
	var got []metrics.Series
	for _, l := range lines(out.String()) {
		assert.True(t, metrics.IsEMF([]byte(l)))
		s, err := metrics.ParseEMF([]byte(l))
		require.NoError(t, err)
		got = append(got, s...)
	}
	assert.ElementsMatch(t, want, got)
}

func TestParseEMFRefusesWhatIsNotEMF(t *testing.T) {
	for _, in := range []string{`{"msg":"request"}`, `not json`, `{"_aws":{}}`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"tempwatch","Dimensions":[["source"]],"Metrics":[{"Name":"tempwatch_ingest_batch_duration_seconds"}]}]},"source":"sqs","tempwatch_ingest_batch_duration_seconds":"x"}`} {
		_, err := metrics.ParseEMF([]byte(in))
		assert.Error(t, err, in)
	}
	assert.False(t, metrics.IsEMF([]byte(`{"msg":"request"}`)))
}

func TestWriteEMFNothingRecordedWritesNothing(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, metrics.WriteEMF(&out, metrics.NewSet().Take(), time.Now()))
	assert.Empty(t, out.String())
}

// Label values are written as JSON strings whatever they hold.
func TestWriteEMFEscapesLabelValues(t *testing.T) {
	set := metrics.NewSet()
	odd := "a\"b\\c\n\x01\xffé"
	set.Add(metrics.IngestReadings, 1, odd, "stored", "none")
	var out bytes.Buffer
	require.NoError(t, metrics.WriteEMF(&out, set.Take(), time.Now()))
	checkEMF(t, strings.TrimSuffix(out.String(), "\n"))
	got, err := metrics.ParseEMF(out.Bytes())
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "a\"b\\c\n\x01\uFFFDé", got[0].Labels[0])
}
