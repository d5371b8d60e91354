package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/tempwatch/tempwatch/shared/logging"
	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// validRequestID accepts ids a proxy might send; anything else is replaced
// so a caller cannot inject text into our logs.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// Wrap adds what every function's handler needs: a request id (taken from
// X-Request-Id when sane), X-Content-Type-Options: nosniff (no browser
// reads an answer as anything but its declared type), the caller's address
// (RemoteIP, for the audit trail), an access log line naming the user
// (NoteCaller), the request's metrics (count by route pattern, method and
// status class; duration), and a recovered panic as a 500 problem instead of a dropped
// connection.
// The composition root of each function applies it once (app.Middleware).
func Wrap(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			id = logging.NewRequestID()
		}
		acc := &access{}
		ctx := context.WithValue(logging.WithRequestID(r.Context(), id), accessKey{}, acc)
		r = r.WithContext(tempwatch.WithRemoteAddress(ctx, RemoteIP(r)))
		w.Header().Set("X-Request-Id", id)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		defer func() {
			p := recover()
			if p == http.ErrAbortHandler { //nolint:errorlint // net/http's sentinel, compared as net/http does
				// A streamed answer cut off on purpose: net/http drops the
				// connection instead of ending the response as if whole.
				defer panic(p)
			} else if p != nil {
				log.ErrorContext(r.Context(), "panic", "panic", p)
				Error(rec, r, log, tempwatch.Errorf(tempwatch.EINTERNAL, "panic: %v", p))
			}
			d := time.Since(start)
			route, method := acc.route, methodLabel(r.Method)
			if route == "" {
				route = "unmatched"
			}
			fn := metrics.Function()
			set := metrics.From(r.Context())
			set.Add(metrics.HTTPRequests, 1, fn, route, method, statusClass(rec.status))
			set.Observe(metrics.HTTPDuration, d.Seconds(), fn, route, method)
			log.InfoContext(r.Context(), "request",
				"method", r.Method, "path", r.URL.Path, "status", rec.status, "user_id", acc.userID,
				"duration_ms", float64(d.Microseconds())/1000)
		}()
		next.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer's Flush, for the
// answers that stream.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// access is what the access log line and the request metrics learn while
// the request is served.
type access struct{ userID, route string }

type accessKey struct{}

// NoteCaller names userID in the access log line of the request of ctx
// (Wrap's): auth.Authenticated calls it with the token's user, a login with
// the user it let in. The line is written outside them, so they fill a slot
// that Wrap put in the context.
func NoteCaller(ctx context.Context, userID string) {
	if a, ok := ctx.Value(accessKey{}).(*access); ok {
		a.userID = userID
	}
}

// noteRoute names the route pattern that serves the request of ctx (its
// method left out: the method is a label of its own) for the metrics: the
// pattern, not the path, so the label has as many values as there are
// routes.
func noteRoute(ctx context.Context, pattern string) {
	if a, ok := ctx.Value(accessKey{}).(*access); ok {
		if _, path, ok := strings.Cut(pattern, " "); ok {
			pattern = path
		}
		a.route = strings.ReplaceAll(pattern, "...}", "}")
	}
}

// methodLabel is method when it is one of HTTP's, else "other": a caller
// cannot add label values.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// statusClass is the status code's class: 2xx, 4xx, ...
func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "5xx"
	}
	return string(rune('0'+status/100)) + "xx"
}

// RemoteIP is the caller's address. Behind API Gateway, the Lambda proxy
// adapter sets RemoteAddr to requestContext.identity.sourceIp (the address
// API Gateway saw); X-Forwarded-For is not read because a client can forge it.
func RemoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
