// Package lambdahttp runs an http.Handler as a Lambda function behind an API
// Gateway REST API (proxy integration, payload format 1.0). Only mains use it.
package lambdahttp

import (
	"context"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// Start serves h for API Gateway REST proxy events until the runtime stops.
func Start(h http.Handler) {
	lambda.Start(proxy(h))
}

// proxy returns the REST proxy handler for h: aws-lambda-go-api-proxy's,
// handed a path it can always parse (escapedPath), its Location headers
// put behind the caller's base path (withBasePath).
func proxy(h http.Handler) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	adapter := httpadapter.New(h)
	return func(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		base := basePath(req)
		req.Path = escapedPath(req.Path)
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
// requestContext.path (another emulator) falls back to the stage.
func basePath(req events.APIGatewayProxyRequest) string {
	full := req.RequestContext.Path
	switch {
	case full == "":
		if st := req.RequestContext.Stage; st != "" && st != "$default" {
			return "/" + st
		}
		return ""
	case strings.HasSuffix(full, req.Path):
		return strings.TrimSuffix(full, req.Path)
	}
	return ""
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
