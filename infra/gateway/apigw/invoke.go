package apigw

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
)

// InvokeAPIPattern is the Lambda Invoke API route the gateway serves for
// callers that invoke a function directly (the bridge invokes ingest), so
// that those invocations queue behind the same Limiter as the API's.
const InvokeAPIPattern = "POST /2015-03-31/functions/{name}/invocations"

// InvokeProxy forwards Lambda Invoke API requests for the named functions to
// their containers' emulators, as they are (the payload, the function's
// answer and its X-Amz-Function-Error), holding each function to its
// Limiter slots. Request signatures are not checked: it is the local stand-in.
type InvokeProxy struct {
	Functions []string                     // the function names it accepts
	URL       func(function string) string // base URL, e.g. http://ingest:8080
	Limit     *Limiter
	Transport http.RoundTripper // nil means http.DefaultTransport
}

// ServeHTTP answers one InvokeAPIPattern request (it reads r.PathValue("name")).
func (p *InvokeProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !slices.Contains(p.Functions, name) {
		writeProblem(w, http.StatusNotFound, "not_found", fmt.Sprintf("No function %q (one of %s).", name, strings.Join(p.Functions, ", ")), nil)
		return
	}
	if p.Limit != nil {
		release, err := p.Limit.Acquire(r.Context(), name)
		switch {
		case errors.Is(err, ErrQueueFull):
			// Lambda's own throttling answer. The bridge turns the SDK's
			// retries off (aws.NopRetryer); its delivery backoff retries.
			w.Header().Set("Retry-After", "1")
			writeProblem(w, http.StatusTooManyRequests, "unavailable",
				fmt.Sprintf("The function is busy: %d invocations already wait for it; retry shortly.", p.Limit.Queue), nil)
			return
		case err != nil:
			writeProblem(w, http.StatusGatewayTimeout, "unavailable", "The function was busy and did not take the request in time.", nil)
			return
		}
		defer release()
	}
	target, err := url.Parse(strings.TrimSuffix(p.URL(name), "/"))
	if err != nil {
		writeProblem(w, http.StatusBadGateway, "unavailable", "The function's URL is malformed.", nil)
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = target.Path + InvokePath // the emulator names every function "function"
			pr.Out.URL.RawPath = ""
		},
		Transport: p.Transport,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			writeProblem(w, http.StatusBadGateway, "unavailable", "The function failed or could not be reached.", nil)
		},
	}
	proxy.ServeHTTP(w, r)
}
