package apigw

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// InvokePath is the Lambda Invoke API path the runtime interface emulator
// serves; it names every function "function".
const InvokePath = "/2015-03-31/functions/function/invocations"

// MaxBodyBytes mirrors API Gateway's 10 MB payload limit.
const MaxBodyBytes = 10 << 20

// ErrFunction is returned when the function itself failed (an unhandled
// error or a malformed response), which API Gateway answers with 502.
var ErrFunction = errors.New("function error")

// Invoker sends one event to one function and returns its response payload.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) ([]byte, error)
}

// StreamInvoker is an Invoker that also hands over a function's answer as
// the function writes it, for the routes whose integration streams
// (sam.Route.Stream): the prelude (status and headers as JSON, then eight
// zero bytes) and then the body.
type StreamInvoker interface {
	Invoker
	InvokeStream(ctx context.Context, function string, payload []byte) (io.ReadCloser, error)
}

// HTTPInvoker invokes functions over the Lambda Invoke API at URL(function).
type HTTPInvoker struct {
	URL    func(function string) string // base URL, e.g. http://clients:8080
	Client *http.Client
}

// Invoke POSTs payload to the function's invocations endpoint.
func (h HTTPInvoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	resp, err := h.post(ctx, function, payload)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 2*MaxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("invoke %s: read response: %w", function, err)
	}
	if err := invokeError(function, resp, body); err != nil {
		return nil, err
	}
	return body, nil
}

// post sends one invocation.
func (h HTTPInvoker) post(ctx context.Context, function string, payload []byte) (*http.Response, error) {
	url := strings.TrimSuffix(h.URL(function), "/") + InvokePath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", function, err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", function, err)
	}
	return resp, nil
}

// invokeError is what an Invoke API answer that is not the function's
// answer says: another status, or a function error.
func invokeError(function string, resp *http.Response, body []byte) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("invoke %s: status %d: %s", function, resp.StatusCode, truncate(body))
	}
	if resp.Header.Get("X-Amz-Function-Error") != "" {
		return fmt.Errorf("invoke %s: %w: %s", function, ErrFunction, truncate(body))
	}
	return nil
}

// InvokeStream POSTs payload and returns the answer's body as it comes.
func (h HTTPInvoker) InvokeStream(ctx context.Context, function string, payload []byte) (io.ReadCloser, error) {
	resp, err := h.post(ctx, function, payload)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, invokeError(function, resp, body)
	}
	return resp.Body, nil
}

// Gateway is the http.Handler that stands in for a REST API stage.
type Gateway struct {
	Router  *Router
	Invoker Invoker
	Stage   string // request context stage, e.g. v1
	Log     *slog.Logger
	Timeout time.Duration // per invocation; 0 means 29s, API Gateway's limit
	// StreamTimeout bounds a streamed route's invocation instead; 0 means
	// 15 minutes, Lambda's longest run.
	StreamTimeout time.Duration
	// Limit, if set, holds each function to the invocations its container
	// takes at once; the time an invocation waits counts in Timeout.
	Limit *Limiter
}

// ServeHTTP routes, invokes and answers one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = g.withoutStage(r)
	route, params, ok := g.Router.Match(r.Method, r.URL.Path)
	if !ok {
		if g.Router.Allowed(r.URL.Path) {
			writeProblem(w, http.StatusMethodNotAllowed, "not_found", fmt.Sprintf("No API method %s on %s.", r.Method, r.URL.Path), nil)
			return
		}
		writeProblem(w, http.StatusNotFound, "not_found", fmt.Sprintf("No API resource for %s %s.", r.Method, r.URL.Path), nil)
		return
	}
	query, bad := parseQuery(r.URL.RawQuery)
	if len(bad) > 0 {
		writeProblem(w, http.StatusBadRequest, "invalid", "The query string has malformed percent-escapes.", bad)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "invalid", "The request body could not be read.", nil)
		return
	}
	if len(body) > MaxBodyBytes {
		writeProblem(w, http.StatusRequestEntityTooLarge, "too_large", "The request body exceeds 10 MB.", nil)
		return
	}
	event := g.event(r, route.Path, params, query, body)
	payload, err := json.Marshal(event)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "internal", "The request could not be encoded.", nil)
		return
	}
	timeout := g.Timeout
	if timeout == 0 {
		timeout = 29 * time.Second
	}
	if route.Stream {
		timeout = cmp.Or(g.StreamTimeout, 15*time.Minute)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if g.Limit != nil {
		release, err := g.Limit.Acquire(ctx, route.Function)
		switch {
		case errors.Is(err, ErrQueueFull):
			g.logger().WarnContext(r.Context(), "invocation queue full", "function", route.Function, "route", route.String(), "queue", g.Limit.Queue)
			w.Header().Set("Retry-After", "1")
			writeProblem(w, http.StatusServiceUnavailable, "unavailable",
				fmt.Sprintf("The function is busy: %d invocations already wait for it; retry shortly.", g.Limit.Queue), nil)
			return
		case err != nil:
			g.logger().WarnContext(r.Context(), "invocation queued too long", "function", route.Function, "route", route.String(), "err", err)
			writeProblem(w, http.StatusGatewayTimeout, "unavailable", "The function was busy and did not take the request in time.", nil)
			return
		}
		defer release()
	}
	if route.Stream {
		g.stream(ctx, w, r, route, payload)
		return
	}
	out, err := g.Invoker.Invoke(ctx, route.Function, payload)
	if err != nil {
		g.invokeFailed(w, r, route, err)
		return
	}
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode == 0 {
		g.logger().ErrorContext(r.Context(), "malformed function response", "function", route.Function, "payload", truncate(out))
		writeProblem(w, http.StatusBadGateway, "unavailable", "The function returned a malformed response.", nil)
		return
	}
	writeResponse(w, resp)
}

// invokeFailed answers an invocation that failed: 504 when it ran out of
// time, 502 otherwise.
func (g *Gateway) invokeFailed(w http.ResponseWriter, r *http.Request, route sam.Route, err error) {
	g.logger().ErrorContext(r.Context(), "invoke failed", "function", route.Function, "route", route.String(), "err", err)
	if errors.Is(err, context.DeadlineExceeded) {
		writeProblem(w, http.StatusGatewayTimeout, "unavailable", "The function did not answer in time.", nil)
		return
	}
	writeProblem(w, http.StatusBadGateway, "unavailable", "The function failed or could not be reached.", nil)
}

// maxPrelude bounds a streamed answer's status and headers.
const maxPrelude = 64 << 10

// stream invokes a streamed route's function and passes its answer on as
// it comes: the prelude's status and headers, then each piece of the body,
// flushed. A stream that breaks after the status is sent cuts the
// response off (http.ErrAbortHandler), as API Gateway drops the
// connection, so the caller never takes a part for the whole.
// ctx is the invocation's: r's, bounded by the route's timeout.
func (g *Gateway) stream(ctx context.Context, w http.ResponseWriter, r *http.Request, route sam.Route, payload []byte) {
	si, ok := g.Invoker.(StreamInvoker)
	if !ok {
		writeProblem(w, http.StatusBadGateway, "unavailable", "The route streams, and this gateway cannot invoke a function that way.", nil)
		return
	}
	body, err := si.InvokeStream(ctx, route.Function, payload)
	if err != nil {
		g.invokeFailed(w, r, route, err)
		return
	}
	defer body.Close()
	br := bufio.NewReaderSize(body, 32<<10)
	var meta struct {
		StatusCode        int                 `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Cookies           []string            `json:"cookies"`
	}
	prelude, err := readPrelude(br)
	if err == nil {
		err = json.Unmarshal(prelude, &meta)
	}
	if err != nil || meta.StatusCode == 0 {
		g.logger().ErrorContext(r.Context(), "malformed streamed response", "function", route.Function, "err", err, "prelude", truncate(prelude))
		writeProblem(w, http.StatusBadGateway, "unavailable", "The function returned a malformed response.", nil)
		return
	}
	for k, vs := range meta.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for k, v := range meta.Headers {
		w.Header().Set(k, v)
	}
	for _, c := range meta.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(meta.StatusCode)
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return // the caller left; closing body tells the function
			}
			_ = rc.Flush()
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			g.logger().ErrorContext(r.Context(), "streamed response broke off", "function", route.Function, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

// readPrelude reads up to and past the eight zero bytes that end a
// streamed answer's prelude, and returns what came before them.
func readPrelude(br *bufio.Reader) ([]byte, error) {
	var prelude []byte
	zeros := 0
	for zeros < 8 {
		c, err := br.ReadByte()
		if err != nil {
			return prelude, fmt.Errorf("read the prelude: %w", err)
		}
		if c == 0 {
			zeros++
			continue
		}
		for ; zeros > 0; zeros-- {
			prelude = append(prelude, 0)
		}
		if prelude = append(prelude, c); len(prelude) > maxPrelude {
			return prelude, errors.New("the prelude exceeds 64 KiB")
		}
	}
	return prelude, nil
}

func (g *Gateway) logger() *slog.Logger {
	if g.Log == nil {
		return slog.Default()
	}
	return g.Log
}

// withoutStage is r without the stage in front of its path (/v1/sensors is
// /sensors): the routes are served at the root and behind the stage, as an
// API's execute-api address serves them behind it, so the Location headers
// the functions write (the stage in front, from requestContext.path) resolve.
func (g *Gateway) withoutStage(r *http.Request) *http.Request {
	prefix, p := g.stagePrefix(), r.URL.Path
	if prefix == "" || (p != prefix && !strings.HasPrefix(p, prefix+"/")) {
		return r
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = cmp.Or(strings.TrimPrefix(p, prefix), "/")
	r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, prefix)
	return r2
}

// stagePrefix is what the caller's path holds in front of the resource path:
// "/" and the stage, or nothing without a stage.
func (g *Gateway) stagePrefix() string {
	if g.Stage == "" {
		return ""
	}
	return "/" + g.Stage
}

// event builds the REST API (v1) proxy event, as API Gateway's AWS_PROXY
// integration sends it: the path still percent-encoded, path and query
// parameters decoded.
func (g *Gateway) event(r *http.Request, resource string, params map[string]string, q url.Values, body []byte) events.APIGatewayProxyRequest {
	headers := map[string]string{}
	multiHeaders := map[string][]string{}
	for k, vs := range r.Header {
		headers[k] = vs[len(vs)-1]
		multiHeaders[k] = vs
	}
	if r.Host != "" {
		headers["Host"] = r.Host
		multiHeaders["Host"] = []string{r.Host}
	}
	var query map[string]string
	var multiQuery map[string][]string
	if len(q) > 0 {
		query, multiQuery = map[string]string{}, map[string][]string{}
		for k, vs := range q {
			query[k] = vs[len(vs)-1]
			multiQuery[k] = vs
		}
	}
	if len(params) == 0 {
		params = nil
	}
	ev := events.APIGatewayProxyRequest{
		Resource:                        resource,
		Path:                            r.URL.EscapedPath(),
		HTTPMethod:                      r.Method,
		Headers:                         headers,
		MultiValueHeaders:               multiHeaders,
		QueryStringParameters:           query,
		MultiValueQueryStringParameters: multiQuery,
		PathParameters:                  params,
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID:        "000000000000",
			ResourcePath:     resource,
			Stage:            g.Stage,
			RequestID:        requestID(),
			HTTPMethod:       r.Method,
			Path:             g.stagePrefix() + r.URL.EscapedPath(),
			APIID:            "local",
			Protocol:         r.Proto,
			RequestTimeEpoch: time.Now().UnixMilli(),
			Identity: events.APIGatewayRequestIdentity{
				SourceIP:  sourceIP(r),
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

func writeResponse(w http.ResponseWriter, resp events.APIGatewayProxyResponse) {
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		decoded, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			writeProblem(w, http.StatusBadGateway, "unavailable", "The function returned a malformed base64 body.", nil)
			return
		}
		body = decoded
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// parseQuery decodes a query string as url.ParseQuery does, and names each
// parameter with a malformed percent-escape, which url.ParseQuery would
// drop without a word (so a caller's filter would silently not apply).
func parseQuery(raw string) (url.Values, map[string]string) {
	q, bad := url.Values{}, map[string]string{}
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			bad[rawKey] = "has a malformed percent-escape in its name (write % as %25)"
			continue
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			bad[key] = "has a malformed percent-escape (write % as %25)"
			continue
		}
		q.Add(key, value)
	}
	return q, bad
}

// writeProblem answers what the gateway itself refuses as every function
// answers an error: an RFC 9457 problem with a code (of the API's codes),
// a request id (also in X-Request-Id), the fields at fault if any, and
// nosniff.
func writeProblem(w http.ResponseWriter, status int, code, detail string, fields map[string]string) {
	id := requestID()
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Request-Id", id)
	w.WriteHeader(status)
	p := map[string]any{"type": "https://tempwatch.dev/problems/" + code, "title": http.StatusText(status), "status": status,
		"detail": detail, "code": code, "request_id": id}
	if len(fields) > 0 {
		p["errors"] = fields
	}
	_ = json.NewEncoder(w).Encode(p)
}

func sourceIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func truncate(b []byte) string {
	const max = 512
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
