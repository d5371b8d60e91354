package ingest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// counts is a Set's ingest counters as "client outcome reason" → count, and
// its batch durations' count by source.
func counts(set *metrics.Set) (readings map[string]float64, batches map[string]int) {
	readings, batches = map[string]float64{}, map[string]int{}
	for _, s := range set.Snapshot() {
		switch s.Def {
		case metrics.IngestReadings:
			readings[strings.Join(s.Labels, " ")] += s.Sum
		case metrics.IngestBatchDuration:
			batches[s.Labels[0]] += len(s.Values)
		}
	}
	return readings, batches
}

func TestIngestCountsOutcomesByClientAndReason(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	writer, _ := storedOnce()
	devices := newFakeDevices()
	devices.DeviceByKeyHashFn = func(ctx context.Context, _ []byte) (tempwatch.Device, error) {
		m, err := devices.DevicesByRefFn(ctx, []tempwatch.DeviceRef{{ClientSlug: "acme", DeviceID: "dev-1"}})
		return m[tempwatch.DeviceRef{ClientSlug: "acme", DeviceID: "dev-1"}], err
	}
	svc := ingest.NewService(ingest.NewDeviceCache(devices, ingest.DeviceCacheOptions{}), writer, (&fakeArchive{}).archive(), nil, quietLog(),
		ingest.Config{Now: func() time.Time { return now }})
	dev := topic("acme", "dev-1")

	t.Run("bridge batch", func(t *testing.T) {
		set := metrics.NewSet()
		resp := svc.HandleBatch(metrics.WithSet(context.Background(), set), tempwatch.BatchRequest{Messages: []tempwatch.Message{
			msg("good", dev, fmt.Sprintf(`{"value":20,"ts":%q}`, at(-time.Minute)), now),
			msg("again", dev, fmt.Sprintf(`{"value":21,"ts":%q}`, at(-time.Minute)), now),
			msg("malformed", dev, `{"value":`, now),
			msg("unknown-device", topic("acme", "nope"), `{"value":20}`, now),
			msg("unknown-client", topic("initech", "dev-9"), `{"value":20}`, now),
			msg("bad-topic", "elsewhere/x", `{"value":20}`, now),
			msg("out-of-range", dev, `{"value":120}`, now),
			msg("too-old", dev, fmt.Sprintf(`{"value":20,"ts":%q}`, at(-400*24*time.Hour)), now),
			msg("too-new", dev, fmt.Sprintf(`{"value":20,"ts":%q}`, at(time.Hour)), now),
		}})
		require.Empty(t, resp.BatchItemFailures)
		readings, batches := counts(set)
		assert.Equal(t, map[string]float64{
			"acme stored none":                1,
			"acme duplicate none":             1,
			"acme rejected invalid_payload":   1,
			"acme rejected unknown_sensor":    1,
			"acme rejected out_of_range":      1,
			"acme rejected too_old":           1,
			"acme rejected too_new":           1,
			"unknown rejected unknown_sensor": 1,
			"unknown rejected invalid_topic":  1,
		}, readings)
		assert.Equal(t, map[string]int{"bridge": 1}, batches)
	})

	t.Run("sqs batch", func(t *testing.T) {
		set := metrics.NewSet()
		svc.HandleSQS(metrics.WithSet(context.Background(), set), events.SQSEvent{Records: []events.SQSMessage{
			{MessageId: "m1", Body: "not the rule's message"},
		}})
		readings, batches := counts(set)
		assert.Equal(t, map[string]float64{"unknown rejected refused": 1}, readings)
		assert.Equal(t, map[string]int{"sqs": 1}, batches)
	})

	t.Run("http device", func(t *testing.T) {
		set := metrics.NewSet()
		h := ingest.NewHandler(svc, quietLog())
		body := fmt.Sprintf(`[{"value":4,"ts":%q},{"value":400}]`, at(-2*time.Minute))
		r := httptest.NewRequest(http.MethodPost, "/ingest/readings", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(ingest.DeviceKeyHeader, "any key: the fake store knows one device")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r.WithContext(metrics.WithSet(r.Context(), set)))
		require.Less(t, w.Code, 300, w.Body.String())
		readings, batches := counts(set)
		assert.Equal(t, map[string]float64{"acme stored none": 1, "acme rejected out_of_range": 1}, readings)
		assert.Equal(t, map[string]int{"http": 1}, batches)
	})
}
