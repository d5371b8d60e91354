package lambdahttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

func TestDispatch(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(r.Method + " " + r.URL.Path + " " + r.Header.Get("X-Device-Key")))
	})
	other := func(_ context.Context, event json.RawMessage) (any, error) { return "other:" + string(event), nil }
	dispatch := lambdahttp.Dispatch(h, other)

	tests := []struct {
		name  string
		event string
		want  any
	}{
		{"api gateway request", `{"httpMethod":"POST","path":"/ingest/readings","headers":{"X-Device-Key":"k"},"requestContext":{"stage":"v1"},"body":"{}"}`,
			events.APIGatewayProxyResponse{StatusCode: http.StatusTeapot, Body: "POST /ingest/readings k"}},
		{"batch", `{"messages":[{"id":"1","topic":"t","payload":"e30=","received_at":"2026-01-01T00:00:00Z"}]}`,
			`other:{"messages":[{"id":"1","topic":"t","payload":"e30=","received_at":"2026-01-01T00:00:00Z"}]}`},
		{"empty object", `{}`, `other:{}`},
		{"not an object", `[1]`, `other:[1]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dispatch(context.Background(), json.RawMessage(tt.event))
			require.NoError(t, err)
			if want, ok := tt.want.(events.APIGatewayProxyResponse); ok {
				resp, ok := got.(events.APIGatewayProxyResponse)
				require.True(t, ok, "Dispatch(%s) = %T, want an API Gateway response", tt.event, got)
				assert.Equal(t, want.StatusCode, resp.StatusCode)
				assert.Equal(t, want.Body, resp.Body)
				return
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// The runtime answers through NewEventsHandler exactly as it answers a
// func(context.Context, json.RawMessage) handler doing the same.
func TestNewEventsHandlerAnswersLikeTheRuntime(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<b>" + r.Method + " " + r.URL.Path + "</b>"))
	})
	other := func(_ context.Context, event json.RawMessage) (any, error) {
		var in struct{ Fail bool }
		if err := json.Unmarshal(event, &in); err != nil {
			return nil, err
		}
		if in.Fail {
			return nil, errors.New("failed <for good> & all")
		}
		return map[string]any{"event": event, "html": "<a & b>", "n": 1.5}, nil
	}
	raw := lambdahttp.NewEventsHandler(h, other)
	reflected := lambda.NewHandler(lambdahttp.Dispatch(h, other))
	for _, event := range []string{
		`{"httpMethod":"GET","path":"/x","requestContext":{"stage":"v1"}}`,
		`{"messages":[{"id":"1","topic":"t","payload":"e30=","received_at":"2026-01-01T00:00:00Z"}]}`,
		`{"fail":true}`,
		`{}`,
	} {
		got, err := raw.Invoke(context.Background(), []byte(event))
		want, wantErr := reflected.Invoke(context.Background(), []byte(event))
		assert.Equal(t, wantErr, err, "event %s", event)
		assert.Equal(t, string(want), string(got), "event %s", event)
	}
}

// No path an event can carry makes the function fail (API Gateway's 502):
// encoded as a REST API sends it or decoded as others do, it reaches the
// router, which answers a NUL with a 400 naming the parameter.
func TestDispatchTakesAnyPath(t *testing.T) {
	rt := httpapi.NewRouter(slog.New(slog.DiscardHandler))
	rt.Public("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) error {
		httpapi.JSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id"), "q": r.URL.Query().Get("q")})
		return nil
	})
	dispatch := lambdahttp.Dispatch(httpapi.Wrap(slog.New(slog.DiscardHandler), rt), nil)
	tests := []struct {
		name, path string
		status     int
		id         string // of a 200; for a 400 the field named
	}{
		{"encoded percent", "/things/%25", 200, "%"},
		{"decoded percent", "/things/%", 200, "%"},
		{"decoded percent before text", "/things/100%zz", 200, "100%zz"},
		{"decoded question mark", "/things/a?q=1", 200, "a?q=1"},
		{"decoded hash", "/things/a#b", 200, "a#b"},
		{"decoded unicode", "/things/ä", 200, "ä"},
		{"encoded NUL", "/things/a%00", 400, "id"},
		{"decoded NUL", "/things/a\x00", 400, "id"},
		{"encoded invalid UTF-8", "/things/%ff", 400, "id"}, // JSON cannot carry it decoded
		{"unknown route", "/nope/%", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			event, err := json.Marshal(events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: tt.path,
				MultiValueQueryStringParameters: map[string][]string{"q": {"x"}},
				RequestContext:                  events.APIGatewayProxyRequestContext{Stage: "v1"}})
			require.NoError(t, err)
			out, err := dispatch(context.Background(), event)
			require.NoError(t, err, "path %q", tt.path)
			resp := out.(events.APIGatewayProxyResponse)
			require.Equal(t, tt.status, resp.StatusCode, "path %q: %s", tt.path, resp.Body)
			var body map[string]any
			require.NoError(t, json.Unmarshal([]byte(resp.Body), &body))
			switch tt.status {
			case 200:
				assert.Equal(t, map[string]any{"id": tt.id, "q": "x"}, body)
			default:
				assert.NotEmpty(t, body["code"])
				assert.NotEmpty(t, body["request_id"])
				if tt.id != "" {
					assert.Contains(t, body["errors"], tt.id)
				}
			}
		})
	}
}
