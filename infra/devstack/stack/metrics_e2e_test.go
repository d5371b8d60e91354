package stack_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/devstack/stack/stacktest"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/metrics/promtooltest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// TestMetricsEndToEnd drives requests, an HTTP device ingest and a bridge
// batch through real functions (two instances each) and reads MetricsURL:
// each invocation's EMF line, replayed by devstack, adds up to the series
// and values the requests made, across instances; promtool accepts the
// exposition.
func TestMetricsEndToEnd(t *testing.T) {
	env := stacktest.Env(t)
	jwtKeys := env["JWT_SIGNING_KEYS"]
	s, _ := stacktest.MustStart(t, stack.Config{Root: "../../..", Instances: 2, Only: []string{"clients", "sensors", "ingest"}, Env: env})
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/metrics$`, s.MetricsURL())
	api := s.APIURL()
	bearer := "Bearer " + stacktest.MustAdminToken(t, env["DATABASE_URL"], jwtKeys)
	authz := http.Header{"Content-Type": {"application/json"}, "Authorization": {bearer}}

	for range 3 {
		resp, _ := do(t, "GET", api+"/clients", nil, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	slug := "m" + strings.ToLower(auth.NewID()[:8])
	resp, body := do(t, "POST", api+"/clients", strings.NewReader(fmt.Sprintf(`{"name":"Metrics","slug":%q,"timezone":"UTC"}`, slug)), authz)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	var client struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &client))
	resp, body = do(t, "POST", api+"/sensors", strings.NewReader(fmt.Sprintf(`{"client_id":%q,"name":"Cold room","device_id":"cr-1"}`, client.ID)), authz)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	var sensor struct {
		ID        string `json:"id"`
		DeviceKey string `json:"device_key"`
	}
	require.NoError(t, json.Unmarshal(body, &sensor))
	resp, body = do(t, "GET", api+"/sensors/"+sensor.ID, nil, authz)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))

	now := time.Now().UTC()
	resp, body = do(t, "POST", api+"/ingest/readings", strings.NewReader(fmt.Sprintf(`[{"value":4.2,"ts":%q},{"value":4000}]`,
		now.Add(-time.Minute).Format(time.RFC3339Nano))), http.Header{"Content-Type": {"application/json"}, "X-Device-Key": {sensor.DeviceKey}})
	require.Less(t, resp.StatusCode, 300, string(body))

	topic := tempwatch.DeviceRef{ClientSlug: slug, DeviceID: "cr-1"}.Topic()
	batch, err := json.Marshal(tempwatch.BatchRequest{Messages: []tempwatch.Message{
		{ID: "1", Topic: topic, Payload: fmt.Appendf(nil, `{"value":5,"ts":%q}`, now.Add(-30*time.Second).Format(time.RFC3339Nano)), ReceivedAt: now},
		{ID: "2", Topic: topic, Payload: []byte(`{"value":`), ReceivedAt: now},
		{ID: "3", Topic: topic, Payload: fmt.Appendf(nil, `{"value":4.2,"ts":%q}`, now.Add(-time.Minute).Format(time.RFC3339Nano)), ReceivedAt: now},
	}})
	require.NoError(t, err)
	resp, body = do(t, "POST", s.InvokeURL()+"/2015-03-31/functions/ingest/invocations", bytes.NewReader(batch), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var out tempwatch.BatchResponse
	require.NoError(t, json.Unmarshal(body, &out))
	require.Equal(t, 1, out.Accepted, string(body))
	require.Equal(t, 1, out.Duplicates, string(body))

	want := map[string]float64{
		`tempwatch_http_requests_total{code="4xx",function="clients",method="GET",route="/clients"}`:              3,
		`tempwatch_http_requests_total{code="2xx",function="clients",method="POST",route="/clients"}`:             1,
		`tempwatch_http_requests_total{code="2xx",function="sensors",method="POST",route="/sensors"}`:             1,
		`tempwatch_http_requests_total{code="2xx",function="sensors",method="GET",route="/sensors/{id}"}`:         1,
		`tempwatch_http_request_duration_seconds_count{function="clients",method="GET",route="/clients"}`:         3,
		`tempwatch_http_request_duration_seconds_count{function="ingest",method="POST",route="/ingest/readings"}`: 1,
		`tempwatch_ingest_readings_total{client="` + slug + `",outcome="stored",reason="none"}`:                   2,
		`tempwatch_ingest_readings_total{client="` + slug + `",outcome="duplicate",reason="none"}`:                1,
		`tempwatch_ingest_readings_total{client="` + slug + `",outcome="rejected",reason="out_of_range"}`:         1,
		`tempwatch_ingest_readings_total{client="` + slug + `",outcome="rejected",reason="invalid_payload"}`:      1,
		`tempwatch_ingest_batch_duration_seconds_count{source="http"}`:                                            1,
		`tempwatch_ingest_batch_duration_seconds_count{source="bridge"}`:                                          1,
	}
	var got map[string]float64
	var text []byte
	// Each instance writes its EMF line before it answers; devstack reads
	// the line from the instance's output, which may come just after.
	assert.Eventually(t, func() bool {
		text = scrape(t, s.MetricsURL())
		got = parseExposition(t, text)
		return matches(got, want)
	}, 10*time.Second, 50*time.Millisecond, "the scrape shows every invocation")
	for k, v := range want {
		assert.Equal(t, v, got[k], k)
	}
	assert.Contains(t, string(text), `tempwatch_cache_requests_total{cache="device",function="ingest",result=`)
	promtooltest.MustCheckMetrics(t, text)
}

func scrape(t *testing.T, url string) []byte {
	t.Helper()
	resp, body := do(t, "GET", url, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	return body
}

// parseExposition reads Prometheus' text format as series → value.
func parseExposition(t *testing.T, text []byte) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(t, i, line)
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

func matches(got, want map[string]float64) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
