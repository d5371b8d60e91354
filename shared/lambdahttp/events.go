package lambdahttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// EventHandler handles a Lambda event that is not an HTTP request.
type EventHandler func(ctx context.Context, event json.RawMessage) (any, error)

// StartWithEvents serves h for API Gateway REST proxy events and other for
// every other event (such as a direct Invoke with a batch) in one function.
func StartWithEvents(h http.Handler, other EventHandler) {
	mustServeMetrics()
	lambda.Start(NewEventsHandler(h, other))
}

// StartEvents serves h for every event of a function that serves no HTTP
// route (a scheduled one), with the invocation's metrics as every function
// has them.
func StartEvents(h EventHandler) {
	mustServeMetrics()
	lambda.Start(rawHandler(h))
}

// NewEventsHandler returns the runtime handler StartWithEvents runs: Dispatch
// over the event's bytes as the runtime received them, answering what a
// func(context.Context, json.RawMessage) (any, error) handler would. Handed
// such a func, the runtime would first decode and copy the event into the
// json.RawMessage, a full pass over a batch of hundreds of messages.
func NewEventsHandler(h http.Handler, other EventHandler) lambda.Handler {
	return rawHandler(Dispatch(h, other))
}

type rawHandler EventHandler

// Invoke encodes the answer as the runtime encodes a handler's result.
func (h rawHandler) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	ctx, end := Invocation(ctx)
	defer end()
	out, err := h(ctx, event)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Dispatch returns the handler StartWithEvents runs: an event carrying
// httpMethod or requestContext is an API Gateway REST proxy request for h;
// anything else goes to other.
func Dispatch(h http.Handler, other EventHandler) EventHandler {
	serve := proxy(h)
	return func(ctx context.Context, event json.RawMessage) (any, error) {
		var probe struct {
			HTTPMethod     string          `json:"httpMethod"`
			RequestContext json.RawMessage `json:"requestContext"`
		}
		// encoding/json's rules, on encoding/json/v2's decoder (its mirror
		// go-json-experiment/json until Go 1.27): the probe reads the
		// whole event, at a fifth of encoding/json's cost.
		if bytes.HasPrefix(bytes.TrimSpace(event), []byte("{")) {
			_ = jsonv1.Unmarshal(event, &probe)
		}
		if probe.HTTPMethod == "" && (len(probe.RequestContext) == 0 || string(probe.RequestContext) == "null") {
			return other(ctx, event)
		}
		var req events.APIGatewayProxyRequest
		if err := json.Unmarshal(event, &req); err != nil {
			return nil, fmt.Errorf("lambdahttp: malformed API Gateway proxy event: %w", err)
		}
		return serve(ctx, req)
	}
}
