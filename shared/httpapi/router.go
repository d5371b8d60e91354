package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// HandlerFunc serves one route and returns its failure instead of writing
// it: the Router writes every error the same way (Error).
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Router routes a function's requests to its HandlerFuncs. A route added
// with Handle is only reached by an authenticated caller (see
// Authenticated); Public routes prove who calls them their own way (a
// device key, the broker's secret) or serve anyone (the login, the
// documents). An unknown route is a 404 problem. No route is reached with
// a path or query parameter holding NUL or invalid UTF-8, or with a
// malformed query escape: that is a 400 naming the parameter.
//
// A Router adds no request id, log line or panic recovery: the composition
// root wraps the whole function once (Wrap).
type Router struct {
	mux *http.ServeMux
	log *slog.Logger
}

// NewRouter returns an empty Router logging internal errors to log.
func NewRouter(log *slog.Logger) *Router {
	rt := &Router{mux: http.NewServeMux(), log: log}
	rt.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		Error(w, r, log, tempwatch.Errorf(tempwatch.ENOTFOUND, "No route for %s %s.", r.Method, r.URL.Path))
	})
	return rt
}

// Handle serves pattern (net/http's pattern syntax) with h for
// authenticated callers; anyone else gets a 401 problem with a Bearer
// challenge (RFC 6750 §3: an error code only when a token was sent and
// refused; the error of WithUncheckedToken, a 503, when the token could not
// be checked) and h is not called. What h answers is never stored by a cache
// (Cache-Control: no-store): it is one caller's data.
func (rt *Router) Handle(pattern string, h HandlerFunc) {
	rt.Public(pattern, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-store")
		if _, ok := tempwatch.PrincipalFrom(r.Context()); !ok {
			if err, _ := r.Context().Value(uncheckedKey{}).(error); err != nil {
				return err
			}
			if refused(r.Context()) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tempwatch", error="invalid_token"`)
				return tempwatch.Errorf(tempwatch.EUNAUTHORIZED, "The access token is invalid, expired or revoked.")
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="tempwatch"`)
			return tempwatch.Errorf(tempwatch.EUNAUTHORIZED, "A bearer token is required: send Authorization: Bearer <access_token>.")
		}
		return h(w, r)
	})
}

// Public serves pattern with h for every caller.
func (rt *Router) Public(pattern string, h HandlerFunc) {
	rt.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		noteRoute(r.Context(), pattern)
		err := checkPathAndQuery(r, pattern)
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			Error(w, r, rt.log, err)
		}
	})
}

// ServeHTTP routes r.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.mux.ServeHTTP(w, r) }

type refusedKey struct{}

// WithRefusedToken marks ctx as carrying a bearer token that failed its
// check, so a route that needs a caller says why there is none.
func WithRefusedToken(ctx context.Context) context.Context {
	return context.WithValue(ctx, refusedKey{}, true)
}

func refused(ctx context.Context) bool { v, _ := ctx.Value(refusedKey{}).(bool); return v }

type uncheckedKey struct{}

// WithUncheckedToken marks ctx as carrying a bearer token that could not be
// checked (what decides was unreachable): a route that needs a caller
// answers err instead of letting the request through or saying 401.
func WithUncheckedToken(ctx context.Context, err error) context.Context {
	return context.WithValue(ctx, uncheckedKey{}, err)
}
