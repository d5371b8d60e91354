package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Authenticate verifies token and, when v has a revocation list, refuses a
// revoked token id or session. If the list cannot be read (Redis down) the
// token is accepted and the failure logged: access tokens live 15 minutes, and
// failing closed would lock every user out whenever the cache blinks.
func (v *Verifier) Authenticate(ctx context.Context, token string, log *slog.Logger) (tempwatch.Principal, error) {
	p, err := v.Verify(token)
	if err != nil {
		return tempwatch.Principal{}, err
	}
	if v.revoked == nil {
		return p, nil
	}
	ids := []string{p.TokenID}
	if p.SessionID != "" {
		ids = append(ids, p.SessionID)
	}
	revoked, err := v.revoked.AnyRevoked(ctx, ids...)
	switch {
	case err != nil:
		log.WarnContext(ctx, "revocation check unavailable; accepting token", "metric", "auth_revocation_check_failed", "error", err)
	case revoked:
		return tempwatch.Principal{}, errors.New("auth: invalid token: revoked")
	}
	return p, nil
}

// bearerToken returns the token of an "Authorization: Bearer <token>" header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// Middleware puts the tempwatch.Principal of the request's bearer token into its
// context and calls next; a missing, invalid, expired or revoked token gets a
// 401 problem with WWW-Authenticate: Bearer, and next is not called.
func Middleware(v *Verifier, next http.Handler) http.Handler {
	return MiddlewareLog(v, slog.Default(), next)
}

// MiddlewareLog is Middleware logging to log.
//
// It runs inside httpapi.Wrap, so a refused request carries a request id and
// is access-logged like any other.
func MiddlewareLog(v *Verifier, log *slog.Logger, next http.Handler) http.Handler {
	return httpapi.Wrap(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok {
			unauthorized(w, r, log, "A bearer token is required: send Authorization: Bearer <access_token>.")
			return
		}
		p, err := v.Authenticate(r.Context(), token, log)
		if err != nil {
			log.DebugContext(r.Context(), "token refused", "reason", err)
			unauthorized(w, r, log, "The access token is invalid, expired or revoked.")
			return
		}
		next.ServeHTTP(w, r.WithContext(tempwatch.WithPrincipal(r.Context(), p)))
	}))
}

// unauthorized writes a 401 problem with the Bearer challenge (RFC 6750).
func unauthorized(w http.ResponseWriter, r *http.Request, log *slog.Logger, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="tempwatch", error="invalid_token"`)
	httpapi.Error(w, r, log, tempwatch.Errorf(tempwatch.EUNAUTHORIZED, "%s", msg))
}

// Require returns the tempwatch.Principal in r's context, or an EUNAUTHORIZED error
// for a handler reached without Middleware.
func Require(r *http.Request) (tempwatch.Principal, error) {
	p, ok := tempwatch.PrincipalFrom(r.Context())
	if !ok {
		return tempwatch.Principal{}, tempwatch.Errorf(tempwatch.EUNAUTHORIZED, "Authentication is required.")
	}
	return p, nil
}
