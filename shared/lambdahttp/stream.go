package lambdahttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/tempwatch/tempwatch/shared/logging"
)

// StreamContentType is the content type of a streamed answer to an API
// Gateway proxy integration whose ResponseTransferMode is STREAM: a JSON
// prelude (status and headers), eight zero bytes, then the body as it is
// written. API Gateway then caps neither the size (10 MB buffered) nor the
// time (29 s) of the answer; Lambda's own limits apply.
const StreamContentType = "application/vnd.awslambda.http-integration-response"

// StartStreaming serves h for API Gateway REST proxy events of routes
// whose integration streams (template.yaml: ResponseTransferMode: STREAM),
// until the runtime stops. The runtime interface sends what h writes on as
// h writes it (aws-lambda-go streams a handler's io.Reader result).
func StartStreaming(h http.Handler) {
	mustServeMetrics()
	lambda.Start(NewStreamingHandler(h))
}

// NewStreamingHandler returns the runtime handler StartStreaming runs. It
// returns as soon as h has written its status (or finished), with a
// reader that yields the prelude and then h's body as h writes it; h runs
// on until its body is done. The invocation's metrics are written when it
// is.
func NewStreamingHandler(h http.Handler) func(context.Context, events.APIGatewayProxyRequest) (*StreamingResponse, error) {
	var acc core.RequestAccessor
	return func(ctx context.Context, req events.APIGatewayProxyRequest) (*StreamingResponse, error) {
		ctx, end := Invocation(ctx)
		if id := req.RequestContext.RequestID; id != "" {
			ctx = logging.WithGatewayRequestID(ctx, id)
		}
		req.Path = escapedPath(req.Path)
		r, err := acc.EventToRequestWithContext(ctx, req)
		if err != nil {
			end()
			return nil, fmt.Errorf("lambdahttp: convert the proxy event: %w", err)
		}
		pr, pw := io.Pipe()
		w := &streamWriter{header: http.Header{}, body: pw, started: make(chan struct{})}
		go func() {
			err := serveStream(h, w, r)
			w.start(http.StatusOK)
			// The metrics go out before the body ends: the runtime ends the
			// invocation (and may freeze the sandbox) once it reads that end.
			end()
			_ = pw.CloseWithError(err)
		}()
		<-w.started
		return &StreamingResponse{StatusCode: w.status, Headers: w.sent, Body: pr}, nil
	}
}

// serveStream runs h, turning a cut-off answer (http.ErrAbortHandler) into
// an error of the stream, which the runtime reports to Lambda as a failed
// invocation, so the caller's download fails instead of looking whole.
func serveStream(h http.Handler, w *streamWriter, r *http.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("lambdahttp: the handler cut off its answer: %v", p)
		}
	}()
	h.ServeHTTP(w, r)
	return nil
}

// streamWriter is the http.ResponseWriter of a streamed invocation.
type streamWriter struct {
	header  http.Header
	body    *io.PipeWriter
	once    sync.Once
	started chan struct{}
	status  int
	sent    http.Header // header as it was when the status was written
}

func (w *streamWriter) Header() http.Header { return w.header }

func (w *streamWriter) WriteHeader(status int) { w.start(status) }

func (w *streamWriter) start(status int) {
	w.once.Do(func() {
		w.status, w.sent = status, w.header.Clone()
		close(w.started)
	})
}

// Write blocks until the runtime has read p: the pipe passes the body on
// without holding it.
func (w *streamWriter) Write(p []byte) (int, error) {
	w.start(http.StatusOK)
	return w.body.Write(p)
}

// Flush is a no-op: nothing is held back to flush.
func (w *streamWriter) Flush() {}

// StreamingResponse is a streamed answer as API Gateway's streaming proxy
// integration reads it: Read yields the prelude, then Body. It is what
// aws-lambda-go sends on as a stream: an io.Reader that does not marshal
// as JSON, with its own content type.
type StreamingResponse struct {
	StatusCode int
	Headers    http.Header
	Body       io.Reader
	prelude    *bytes.Reader
}

// Read yields the prelude, then the body.
func (s *StreamingResponse) Read(p []byte) (int, error) {
	if s.prelude == nil {
		single, multi := map[string]string{}, map[string][]string{}
		for k, vs := range s.Headers {
			if len(vs) == 1 {
				single[k] = vs[0]
			} else {
				multi[k] = vs
			}
		}
		b, err := json.Marshal(struct {
			StatusCode        int                 `json:"statusCode"`
			Headers           map[string]string   `json:"headers,omitempty"`
			MultiValueHeaders map[string][]string `json:"multiValueHeaders,omitempty"`
		}{s.StatusCode, single, multi})
		if err != nil {
			return 0, err
		}
		s.prelude = bytes.NewReader(append(b, make([]byte, 8)...))
	}
	if s.prelude.Len() > 0 {
		return s.prelude.Read(p)
	}
	return s.Body.Read(p)
}

// Close ends the body early (the runtime calls it once it is done).
func (s *StreamingResponse) Close() error {
	if c, ok := s.Body.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// ContentType is what aws-lambda-go posts the answer as.
func (s *StreamingResponse) ContentType() string { return StreamContentType }

// MarshalJSON refuses, so aws-lambda-go sends the answer as a stream.
func (s *StreamingResponse) MarshalJSON() ([]byte, error) {
	return nil, errors.New("lambdahttp: a streamed answer is not JSON")
}
