package lambdahttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// EventHandler handles a Lambda event that is not an HTTP request.
type EventHandler func(ctx context.Context, event json.RawMessage) (any, error)

// StartWithEvents serves h for API Gateway REST proxy events and other for
// every other event (such as a direct Invoke with a batch) in one function.
func StartWithEvents(h http.Handler, other EventHandler) {
	lambda.Start(Dispatch(h, other))
}

// Dispatch returns the handler StartWithEvents runs: an event carrying
// httpMethod or requestContext is an API Gateway REST proxy request for h;
// anything else goes to other.
func Dispatch(h http.Handler, other EventHandler) EventHandler {
	adapter := httpadapter.New(h)
	return func(ctx context.Context, event json.RawMessage) (any, error) {
		var probe struct {
			HTTPMethod     string          `json:"httpMethod"`
			RequestContext json.RawMessage `json:"requestContext"`
		}
		if bytes.HasPrefix(bytes.TrimSpace(event), []byte("{")) {
			_ = json.Unmarshal(event, &probe)
		}
		if probe.HTTPMethod == "" && (len(probe.RequestContext) == 0 || string(probe.RequestContext) == "null") {
			return other(ctx, event)
		}
		var req events.APIGatewayProxyRequest
		if err := json.Unmarshal(event, &req); err != nil {
			return nil, fmt.Errorf("lambdahttp: malformed API Gateway proxy event: %w", err)
		}
		return adapter.ProxyWithContext(ctx, req)
	}
}
