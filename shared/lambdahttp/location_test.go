package lambdahttp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

// A Location the handler writes as /sensors/{id} reaches a caller behind the
// v1 stage as /v1/sensors/{id}: the event (testdata, the shape API Gateway
// sends a REST proxy integration on its execute-api address) says the
// caller's path, requestContext.path, is the resource path behind /v1.
func TestLocationBehindAStage(t *testing.T) {
	raw, err := os.ReadFile("testdata/apigateway-stage-post.json")
	require.NoError(t, err)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-Answer") {
		case "absolute":
			w.Header().Set("Location", "https://example.com/elsewhere")
		case "protocol-relative":
			w.Header().Set("Location", "//example.com/elsewhere")
		default:
			w.Header().Set("Location", "/sensors/s-1")
		}
		w.WriteHeader(http.StatusCreated)
	})
	dispatch := lambdahttp.Dispatch(h, nil)

	tests := []struct {
		name   string
		edit   func(ev map[string]any)
		answer string
		want   string
	}{
		{"behind the stage", nil, "", "/v1/sensors/s-1"},
		{"custom domain at its root", func(ev map[string]any) { ctxOf(ev)["path"] = "/sensors" }, "", "/sensors/s-1"},
		{"custom domain base path", func(ev map[string]any) { ctxOf(ev)["path"] = "/api/sensors" }, "", "/api/sensors/s-1"},
		{"no requestContext.path: the stage", func(ev map[string]any) { delete(ctxOf(ev), "path") }, "", "/v1/sensors/s-1"},
		{"a base of / is none", func(ev map[string]any) { ctxOf(ev)["path"] = "//sensors" }, "", "/sensors/s-1"},
		{"a protocol-relative base is refused", func(ev map[string]any) { ctxOf(ev)["path"] = "//evil.example/sensors" }, "", "/sensors/s-1"},
		{"a base without a leading / is refused", func(ev map[string]any) { ctxOf(ev)["path"] = "evil.example/sensors" }, "", "/sensors/s-1"},
		{"a stage that is not a path segment is refused", func(ev map[string]any) {
			delete(ctxOf(ev), "path")
			ctxOf(ev)["stage"] = "/evil.example"
		}, "", "/sensors/s-1"},
		{"an absolute URL is kept", nil, "absolute", "https://example.com/elsewhere"},
		{"a protocol-relative URL is kept", nil, "protocol-relative", "//example.com/elsewhere"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev map[string]any
			require.NoError(t, json.Unmarshal(raw, &ev))
			if tt.edit != nil {
				tt.edit(ev)
			}
			if tt.answer != "" {
				ev["headers"].(map[string]any)["X-Answer"] = tt.answer
				ev["multiValueHeaders"].(map[string]any)["X-Answer"] = []string{tt.answer}
			}
			b, err := json.Marshal(ev)
			require.NoError(t, err)
			got, err := dispatch(context.Background(), b)
			require.NoError(t, err)
			resp := got.(events.APIGatewayProxyResponse)
			assert.Equal(t, http.StatusCreated, resp.StatusCode)
			loc := resp.Headers["Location"]
			if vs := resp.MultiValueHeaders["Location"]; len(vs) > 0 {
				loc = strings.Join(vs, ",")
			}
			assert.Equal(t, tt.want, loc)
		})
	}
}

func ctxOf(ev map[string]any) map[string]any { return ev["requestContext"].(map[string]any) }
