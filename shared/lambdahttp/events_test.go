package lambdahttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
