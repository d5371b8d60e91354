// Package logging builds the structured JSON logger every program uses and
// carries the request id through a context.
package logging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
)

type (
	ctxKey       struct{}
	lambdaIDKey  struct{}
	gatewayIDKey struct{}
)

// New returns a JSON logger writing to w at the given level
// ("debug", "info", "warn" or "error"; anything else means info).
func New(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(&requestIDHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})})
}

// WithRequestID returns ctx carrying id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// WithLambdaRequestID returns ctx carrying the Lambda invocation's request
// id (lambdacontext's AwsRequestID), logged as lambda_request_id.
func WithLambdaRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, lambdaIDKey{}, id)
}

// WithGatewayRequestID returns ctx carrying API Gateway's request id
// (requestContext.requestId), logged as apigw_request_id.
func WithGatewayRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, gatewayIDKey{}, id)
}

// NewRequestID returns a random 16-byte hex id.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestIDHandler adds request_id, and the Lambda and API Gateway
// request ids, to every record logged with a context that carries them, so
// handlers need not pass them by hand and a line can be joined with AWS's
// own logs of the invocation.
type requestIDHandler struct{ slog.Handler }

func (h *requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if id, _ := ctx.Value(lambdaIDKey{}).(string); id != "" {
		r.AddAttrs(slog.String("lambda_request_id", id))
	}
	if id, _ := ctx.Value(gatewayIDKey{}).(string); id != "" {
		r.AddAttrs(slog.String("apigw_request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h *requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h *requestIDHandler) WithGroup(name string) slog.Handler {
	return &requestIDHandler{h.Handler.WithGroup(name)}
}
