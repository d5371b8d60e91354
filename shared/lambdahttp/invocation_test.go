package lambdahttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/logging"
	"github.com/tempwatch/tempwatch/shared/metrics"
)

// One invocation through the Lambda adapter: every log line carries the
// function's, Lambda's and API Gateway's request ids, and the invocation
// writes one EMF line to stdout with its own values only.
func TestInvocationLogsRequestIDsAndWritesItsMetrics(t *testing.T) {
	var emf, logs bytes.Buffer
	defer lambdahttp.SetEMFOutput(&emf)()
	log := logging.New(&logs, "info")
	rt := httpapi.NewRouter(log)
	rt.Public("GET /sensors/{id}", func(w http.ResponseWriter, r *http.Request) error {
		log.InfoContext(r.Context(), "inside the handler")
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h := lambdahttp.NewEventsHandler(httpapi.Wrap(log, rt), func(context.Context, json.RawMessage) (any, error) { return nil, nil })
	event, err := json.Marshal(events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/sensors/42",
		RequestContext: events.APIGatewayProxyRequestContext{Stage: "v1", RequestID: "gw-req-1"}})
	require.NoError(t, err)

	for i, id := range []string{"lambda-req-1", "lambda-req-2"} {
		emf.Reset()
		logs.Reset()
		ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: id})
		_, err = h.Invoke(ctx, event)
		require.NoError(t, err)

		ls := strings.Split(strings.TrimSpace(logs.String()), "\n")
		require.Len(t, ls, 2, "the handler's line and the access line: %s", logs.String())
		for _, l := range ls {
			var rec map[string]any
			require.NoError(t, json.Unmarshal([]byte(l), &rec))
			assert.Equal(t, id, rec["lambda_request_id"], l)
			assert.Equal(t, "gw-req-1", rec["apigw_request_id"], l)
			assert.NotEmpty(t, rec["request_id"], "the function's own id stays: %s", l)
		}

		require.Equal(t, 1, strings.Count(emf.String(), "\n"), "one EMF line per invocation: %s", emf.String())
		series, err := metrics.ParseEMF(emf.Bytes())
		require.NoError(t, err)
		var requests float64
		var durations int
		for _, s := range series {
			switch s.Def {
			case metrics.HTTPRequests:
				assert.Equal(t, []string{metrics.Function(), "/sensors/{id}", "GET", "2xx"}, s.Labels)
				requests += s.Sum
			case metrics.HTTPDuration:
				durations += len(s.Values)
			}
		}
		assert.Equal(t, 1.0, requests, "invocation %d counts its own request, not a running total", i)
		assert.Equal(t, 1, durations)
	}
}

// Start's handler (plain HTTP functions) does the same.
func TestNewHandlerWritesMetricsPerInvocation(t *testing.T) {
	var emf bytes.Buffer
	defer lambdahttp.SetEMFOutput(&emf)()
	h := lambdahttp.NewHandler(httpapi.Wrap(slog.New(slog.DiscardHandler), httpapi.NewRouter(slog.New(slog.DiscardHandler))))
	resp, err := h(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/nope"})
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	series, err := metrics.ParseEMF(emf.Bytes())
	require.NoError(t, err)
	var labels [][]string
	for _, s := range series {
		if s.Def == metrics.HTTPRequests {
			labels = append(labels, s.Labels)
		}
	}
	assert.Equal(t, [][]string{{metrics.Function(), "unmatched", "GET", "4xx"}}, labels, "no route: one label value, not the path")
}

// With METRICS_ADDR (compose), the process also serves the sum of its
// invocations' metrics for Prometheus, the same values its EMF lines carry.
func TestMetricsAddrServesTheInvocationsTotals(t *testing.T) {
	defer lambdahttp.SetEMFOutput(io.Discard)()
	addr, err := lambdahttp.ServeMetrics("127.0.0.1:0")
	require.NoError(t, err)
	rt := httpapi.NewRouter(slog.New(slog.DiscardHandler))
	rt.Public("GET /totals/{id}", func(w http.ResponseWriter, _ *http.Request) error { w.WriteHeader(http.StatusOK); return nil })
	h := lambdahttp.NewHandler(httpapi.Wrap(slog.New(slog.DiscardHandler), rt))
	for range 3 {
		_, err := h(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/totals/7"})
		require.NoError(t, err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(body), `tempwatch_http_requests_total{code="2xx",function="`+metrics.Function()+`",method="GET",route="/totals/{id}"} 3`)
	assert.Contains(t, string(body), `tempwatch_http_request_duration_seconds_count{function="`+metrics.Function()+`",method="GET",route="/totals/{id}"} 3`)

	_, err = lambdahttp.ServeMetrics(addr)
	assert.ErrorContains(t, err, "METRICS_ADDR", "an address in use is a configuration error naming the variable")
}
