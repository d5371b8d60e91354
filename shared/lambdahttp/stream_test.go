package lambdahttp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

// readPrelude reads a streamed answer's prelude up to its eight zero bytes.
func readPrelude(t *testing.T, br *bufio.Reader) (status int, headers map[string]string, multi map[string][]string) {
	t.Helper()
	var prelude []byte
	for !bytes.HasSuffix(prelude, make([]byte, 8)) {
		b, err := br.ReadByte()
		require.NoError(t, err, "prelude so far: %q", prelude)
		prelude = append(prelude, b)
	}
	var p struct {
		StatusCode        int                 `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	}
	require.NoError(t, json.Unmarshal(bytes.TrimRight(prelude, "\x00"), &p))
	return p.StatusCode, p.Headers, p.MultiValueHeaders
}

// TestStreamingHandler: the runtime gets the status and headers and the
// first bytes of the body while the handler is still writing.
func TestStreamingHandler(t *testing.T) {
	more, done := make(chan struct{}), make(chan struct{})
	mux := httpapi.NewRouter(slog.New(slog.DiscardHandler))
	mux.Public("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) error {
		defer close(done)
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Add("Vary", "A")
		w.Header().Add("Vary", "B")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "first,"+r.PathValue("name")+"\r\n")
		<-more
		_, _ = io.WriteString(w, "second\r\n")
		return nil
	})
	resp, err := lambdahttp.NewStreamingHandler(httpapi.Wrap(slog.New(slog.DiscardHandler), mux))(context.Background(),
		events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/files/a%20b", RequestContext: events.APIGatewayProxyRequestContext{RequestID: "r1"}})
	require.NoError(t, err)
	assert.Equal(t, lambdahttp.StreamContentType, resp.ContentType())
	_, err = json.Marshal(resp)
	require.Error(t, err, "aws-lambda-go streams only what does not marshal")

	br := bufio.NewReader(resp)
	status, headers, multi := readPrelude(t, br)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "text/csv; charset=utf-8", headers["Content-Type"])
	assert.Equal(t, "nosniff", headers["X-Content-Type-Options"])
	assert.Equal(t, []string{"A", "B"}, multi["Vary"])
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "first,a b\r\n", line)
	select {
	case <-done:
		t.Fatal("the handler finished before its first line was read: not streamed")
	default:
	}
	close(more)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Equal(t, "second\r\n", string(rest))
}

// TestStreamingHandlerCutOff: a handler that cuts its answer off
// (http.ErrAbortHandler after the first bytes) ends the stream with an
// error, which the runtime reports as a failed invocation.
func TestStreamingHandlerCutOff(t *testing.T) {
	mux := httpapi.NewRouter(slog.New(slog.DiscardHandler))
	mux.Public("GET /x", func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.WriteString(w, "partial")
		panic(http.ErrAbortHandler)
	})
	resp, err := lambdahttp.NewStreamingHandler(httpapi.Wrap(slog.New(slog.DiscardHandler), mux))(context.Background(),
		events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/x"})
	require.NoError(t, err)
	br := bufio.NewReader(resp)
	status, _, _ := readPrelude(t, br)
	assert.Equal(t, http.StatusOK, status)
	body, err := io.ReadAll(br)
	assert.Equal(t, "partial", string(body))
	require.Error(t, err)
}

// TestStreamingHandlerProblem: an answer written whole (a problem) streams
// like any other.
func TestStreamingHandlerProblem(t *testing.T) {
	mux := httpapi.NewRouter(slog.New(slog.DiscardHandler))
	resp, err := lambdahttp.NewStreamingHandler(httpapi.Wrap(slog.New(slog.DiscardHandler), mux))(context.Background(),
		events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/nope"})
	require.NoError(t, err)
	br := bufio.NewReader(resp)
	status, headers, _ := readPrelude(t, br)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "application/problem+json", headers["Content-Type"])
	body, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Contains(t, string(body), "No route for GET /nope")
}
