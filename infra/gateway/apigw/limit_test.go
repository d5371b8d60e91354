package apigw_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/gateway/apigw"
)

// heldInvoker answers every invocation once release is closed, counting
// how many it holds at once.
type heldInvoker struct {
	release chan struct{}
	entered chan struct{}

	mu      sync.Mutex
	now, hi int
}

func (h *heldInvoker) Invoke(ctx context.Context, _ string, _ []byte) ([]byte, error) {
	h.mu.Lock()
	h.now++
	h.hi = max(h.hi, h.now)
	h.mu.Unlock()
	defer func() { h.mu.Lock(); h.now--; h.mu.Unlock() }()
	h.entered <- struct{}{}
	select {
	case <-h.release:
		return []byte(`{"statusCode":200,"body":"ok"}`), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func newHeld() *heldInvoker {
	return &heldInvoker{release: make(chan struct{}), entered: make(chan struct{}, 100)}
}

// waitFor polls cond until it holds or a second passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, time.Second, time.Millisecond, what)
}

func TestGatewayQueuesBeyondFunctionConcurrency(t *testing.T) {
	inv := newHeld()
	limit := &apigw.Limiter{PerFunction: 1, Queue: 30}
	srv := httptest.NewServer(&apigw.Gateway{Router: apigw.NewRouter(routes), Invoker: inv, Stage: "v1", Limit: limit})
	defer srv.Close()

	const n = 20
	codes := make(chan int, n)
	for range n {
		go func() {
			resp, err := http.Get(srv.URL + "/clients")
			if err != nil {
				codes <- 0
				return
			}
			_ = resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	<-inv.entered
	waitFor(t, "the other requests queue", func() bool { return limit.Waiting("clients") == n-1 })
	close(inv.release)
	for range n {
		assert.Equal(t, http.StatusOK, <-codes)
	}
	assert.Equal(t, 1, inv.hi, "invocations of one function at once")
}

func TestGatewayQueueFullAndQueueTimeout(t *testing.T) {
	problem := func(t *testing.T, resp *http.Response) map[string]any {
		t.Helper()
		defer resp.Body.Close()
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		var p map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
		return p
	}
	t.Run("queue full answers 503 at once", func(t *testing.T) {
		inv := newHeld()
		limit := &apigw.Limiter{PerFunction: 1, Queue: 1}
		srv := httptest.NewServer(&apigw.Gateway{Router: apigw.NewRouter(routes), Invoker: inv, Stage: "v1", Limit: limit})
		defer srv.Close()
		defer close(inv.release)
		for range 2 { // one invoking, one queued
			go func() {
				if resp, err := http.Get(srv.URL + "/clients"); err == nil {
					_ = resp.Body.Close()
				}
			}()
		}
		<-inv.entered
		waitFor(t, "one request queues", func() bool { return limit.Waiting("clients") == 1 })
		resp, err := http.Get(srv.URL + "/clients")
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Equal(t, "1", resp.Header.Get("Retry-After"))
		p := problem(t, resp)
		assert.Equal(t, "unavailable", p["code"])
		assert.Contains(t, p["detail"], "busy")

		// Another function has its own slots: its request reaches the invoker.
		go func() {
			if resp, err := http.Get(srv.URL + "/clients/me"); err == nil {
				_ = resp.Body.Close()
			}
		}()
		<-inv.entered
	})
	t.Run("queued past the timeout answers 504", func(t *testing.T) {
		inv := newHeld()
		limit := &apigw.Limiter{PerFunction: 1, Queue: 5}
		// The holder's gateway waits; the second shares its limiter with a short timeout.
		holder := httptest.NewServer(&apigw.Gateway{Router: apigw.NewRouter(routes), Invoker: inv, Stage: "v1", Limit: limit})
		defer holder.Close()
		srv := httptest.NewServer(&apigw.Gateway{Router: apigw.NewRouter(routes), Invoker: inv, Stage: "v1",
			Limit: limit, Timeout: 50 * time.Millisecond})
		defer srv.Close()
		defer close(inv.release)
		go func() {
			if resp, err := http.Get(holder.URL + "/clients"); err == nil {
				_ = resp.Body.Close()
			}
		}()
		<-inv.entered
		resp, err := http.Get(srv.URL + "/clients")
		require.NoError(t, err)
		assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
		assert.Contains(t, problem(t, resp)["detail"], "busy")
		assert.Equal(t, 0, limit.Waiting("clients"), "a request that gave up leaves the queue")
	})
}

func TestInvokeProxyQueuesAndForwards(t *testing.T) {
	rie := fakeRIE(t, func(ev events.APIGatewayProxyRequest) (int, http.Header, string) {
		return 200, http.Header{"X-Amz-Function-Error": {"Unhandled"}}, `{"errorMessage":"boom ` + ev.Path + `"}`
	})
	limit := &apigw.Limiter{PerFunction: 1, Queue: 0}
	mux := http.NewServeMux()
	mux.Handle(apigw.InvokeAPIPattern, &apigw.InvokeProxy{Functions: []string{"ingest"}, URL: func(string) string { return rie.URL }, Limit: limit})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	post := func(fn string) *http.Response {
		resp, err := http.Post(srv.URL+"/2015-03-31/functions/"+fn+"/invocations", "application/json", strings.NewReader(`{"path":"/x"}`))
		require.NoError(t, err)
		return resp
	}
	resp := post("ingest")
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Unhandled", resp.Header.Get("X-Amz-Function-Error"), "the function's error reaches the caller as it is")
	assert.Equal(t, `{"errorMessage":"boom /x"}`, string(body))

	resp = post("nope")
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	release, err := limit.Acquire(context.Background(), "ingest") // the one slot, taken
	require.NoError(t, err)
	defer release()
	resp = post("ingest")
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "queue full: Lambda's throttle answer, which the bridge's delivery backoff retries")
}
