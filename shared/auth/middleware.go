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

// Authenticated puts the principal of the request's bearer token into its
// context and calls next. It refuses nothing itself: a request without a
// token goes on without a principal, one whose token fails the check goes
// on marked so (httpapi.WithRefusedToken), and the router answers 401 on
// every route that needs a caller. So a login or a refresh sent with an
// expired access token still works, and the one rule for who may call what
// lives in the router and the domain policy.
func Authenticated(v *Verifier, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		token, ok := bearerToken(r)
		if !ok {
			next.ServeHTTP(w, r.WithContext(httpapi.WithRefusedToken(ctx)))
			return
		}
		p, err := v.Authenticate(ctx, token, log)
		if err != nil {
			log.DebugContext(ctx, "token refused", "reason", err)
			next.ServeHTTP(w, r.WithContext(httpapi.WithRefusedToken(ctx)))
			return
		}
		httpapi.NoteCaller(ctx, p.UserID)
		next.ServeHTTP(w, r.WithContext(tempwatch.WithPrincipal(ctx, p)))
	})
}
