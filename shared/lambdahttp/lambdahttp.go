// Package lambdahttp runs an http.Handler as a Lambda function behind an API
// Gateway REST API (proxy integration, payload format 1.0). Only mains use it.
package lambdahttp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/logging"
	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/metrics/replay"
)

// Start serves h for API Gateway REST proxy events until the runtime stops.
func Start(h http.Handler) {
	mustServeMetrics()
	lambda.Start(NewHandler(h))
}

// NewHandler returns the runtime handler Start runs: each invocation is one
// Invocation (metrics, request ids) around the proxy.
func NewHandler(h http.Handler) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	serve := proxy(h)
	return func(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		ctx, end := Invocation(ctx)
		defer end()
		return serve(ctx, req)
	}
}

// emfOut is where invocations write their metrics: stdout, which Lambda
// sends to CloudWatch Logs, which extracts EMF documents.
var emfOut io.Writer = os.Stdout

// local, when METRICS_ADDR is set, adds up every invocation's metrics for
// a Prometheus scrape of this process.
var local atomic.Pointer[replay.Registry]

// serveMetrics serves this process's metrics at addr/metrics when addr is
// set: where functions run as long-lived containers (docker-compose.yml,
// under the runtime interface emulator) and Prometheus can reach each one.
// On Lambda it is unset: an instance cannot be scraped, its EMF lines are
// the metrics. The totals are the same invocations' values replayed
// (shared/metrics/replay), so both paths count alike.
func serveMetrics(addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("METRICS_ADDR %s: %w", addr, err)
	}
	r := replay.NewRegistry()
	local.Store(r)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", r.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// mustServeMetrics is serveMetrics from METRICS_ADDR; an address it cannot
// listen on ends the process as a configuration error.
func mustServeMetrics() {
	if _, err := serveMetrics(os.Getenv("METRICS_ADDR")); err != nil {
		config.Exit(metrics.Function(), err)
	}
}

// Invocation starts one invocation: ctx carries a fresh metrics Set and the
// Lambda request id (for every log line). end writes the Set as Embedded Metric
// Format to stdout: the values of this invocation only.
func Invocation(ctx context.Context) (_ context.Context, end func()) {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		ctx = logging.WithLambdaRequestID(ctx, lc.AwsRequestID)
	}
	set := metrics.NewSet()
	return metrics.WithSet(ctx, set), func() {
		if series := set.Take(); len(series) > 0 {
			_ = metrics.WriteEMF(emfOut, series, time.Now())
			if r := local.Load(); r != nil {
				r.Apply(series)
			}
		}
	}
}

// proxy returns the REST proxy handler for h: aws-lambda-go-api-proxy's,
// handed a path it can always parse (escapedPath), its Location headers
// put behind the caller's base path (withBasePath).
func proxy(h http.Handler) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	adapter := httpadapter.New(h)
	return func(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		base := basePath(req)
		req.Path = escapedPath(req.Path)
		if id := req.RequestContext.RequestID; id != "" {
			ctx = logging.WithGatewayRequestID(ctx, id)
		}
		resp, err := adapter.ProxyWithContext(ctx, req)
		if err == nil && base != "" {
			withBasePath(&resp, base)
		}
		return resp, err
	}
}

// basePath is what the caller's URL holds in front of the resource path:
// the stage ("/v1") on the API's execute-api address, a custom domain's
// base path mapping, nothing on a custom domain mapped at its root. The
// event's path is the resource path; requestContext.path is the one the
// caller sent, so the base is their difference. An event without
// requestContext.path (another emulator) falls back to the stage. A base
// that is not a path ("/", or one starting with "//" or no "/") is none:
// put in front of /sensors/x it would make a protocol-relative Location.
func basePath(req events.APIGatewayProxyRequest) string {
	full, base := req.RequestContext.Path, ""
	switch {
	case full == "":
		if st := req.RequestContext.Stage; st != "" && st != "$default" {
			base = "/" + st
		}
	case strings.HasSuffix(full, req.Path):
		base = strings.TrimSuffix(full, req.Path)
	}
	if !strings.HasPrefix(base, "/") || strings.HasPrefix(base, "//") {
		return ""
	}
	return strings.TrimSuffix(base, "/")
}

// withBasePath puts base in front of each Location that is an absolute
// path: the handlers write /sensors/{id}, which only the base makes right
// for a caller behind a stage.
func withBasePath(resp *events.APIGatewayProxyResponse, base string) {
	fix := func(loc string) string {
		if strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
			return base + loc
		}
		return loc
	}
	for k, v := range resp.Headers {
		if http.CanonicalHeaderKey(k) == "Location" {
			resp.Headers[k] = fix(v)
		}
	}
	for k, vs := range resp.MultiValueHeaders {
		if http.CanonicalHeaderKey(k) == "Location" {
			for i := range vs {
				vs[i] = fix(vs[i])
			}
		}
	}
}

// escapedPath returns path as a valid percent-encoded URL path. A REST API
// sends the path still encoded, which passes unchanged; a decoded one (an
// HTTP API, another emulator) could hold what a URL cannot: a bare % or a
// control character makes the adapter fail (a 502 for the caller), a ? or
// # would cut the path. Those bytes are escaped, so the handler sees the
// path the caller sent and its router judges it.
func escapedPath(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '%' && i+2 < len(path) && isHex(path[i+1]) && isHex(path[i+2]):
			b.WriteByte(c)
		case c == '%' || c == '?' || c == '#' || c == ' ' || c < 0x20 || c >= 0x7f:
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
