package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// ErrCheckUnavailable is the cause of a token that could not be checked
// against its user's cutoff (PostgreSQL unreachable, and no cached copy): it
// is refused with 503, never accepted.
var ErrCheckUnavailable = tempwatch.Errorf(tempwatch.EUNAVAILABLE, "The access token cannot be checked now; try again shortly.")

// Authenticate verifies token and, when v has cutoffs, refuses a token issued
// before its user's cutoff or whose user is gone; a cutoff that cannot be
// read refuses the token too (ErrCheckUnavailable). When v has a revocation
// list it refuses a revoked token id or session (logout, refresh reuse); if
// that list cannot be read (Redis down) the token is accepted and the failure
// logged: what takes access away for good is the cutoff, and a logged-out
// session's tokens live at most JWT_ACCESS_TTL.
func (v *Verifier) Authenticate(ctx context.Context, token string, log *slog.Logger) (tempwatch.Principal, error) {
	p, err := v.Verify(token)
	if err != nil {
		return tempwatch.Principal{}, err
	}
	ids := []string{p.TokenID}
	if p.SessionID != "" {
		ids = append(ids, p.SessionID)
	}
	if v.checker != nil {
		st := v.checker.CheckToken(ctx, p.UserID, ids...)
		if err := checkCutoff(p, st.ValidAfter, st.CutoffErr); err != nil {
			return tempwatch.Principal{}, err
		}
		return p, checkRevoked(ctx, log, st.Revoked, st.RevokedErr)
	}
	if v.cutoffs != nil {
		cutoff, err := v.cutoffs.TokensValidAfter(ctx, p.UserID)
		if err := checkCutoff(p, cutoff, err); err != nil {
			return tempwatch.Principal{}, err
		}
	}
	if v.revoked == nil {
		return p, nil
	}
	revoked, err := v.revoked.AnyRevoked(ctx, ids...)
	if err := checkRevoked(ctx, log, revoked, err); err != nil {
		return tempwatch.Principal{}, err
	}
	return p, nil
}

// checkRevoked refuses a revoked token; a list that could not be read
// (err) accepts it, logged.
func checkRevoked(ctx context.Context, log *slog.Logger, revoked bool, err error) error {
	switch {
	case err != nil:
		log.WarnContext(ctx, "revocation check unavailable; accepting token", "metric", "auth_revocation_check_failed", "error", err)
	case revoked:
		return errors.New("auth: invalid token: revoked")
	}
	return nil
}

// checkCutoff refuses p when its user is gone (err ENOTFOUND) or cutoff is
// later than the one p's token was issued under, compared to the
// microsecond, the resolution the cutoff is stored at.
func checkCutoff(p tempwatch.Principal, cutoff time.Time, err error) error {
	switch {
	case tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND:
		return fmt.Errorf("%w: the user no longer exists", ErrInvalidToken)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrCheckUnavailable, err)
	case p.ValidAfter.UnixMicro() < cutoff.UnixMicro():
		return fmt.Errorf("%w: issued before the user's access changed", ErrInvalidToken)
	}
	return nil
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
// on marked so (httpapi.WithRefusedToken), one that could not be checked
// marked that way (httpapi.WithUncheckedToken), and the router answers 401,
// or 503, on every route that needs a caller. So a login or a refresh sent
// with an expired access token still works, and the one rule for who may
// call what lives in the router and the domain policy.
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
		switch {
		case errors.Is(err, ErrCheckUnavailable):
			log.WarnContext(ctx, "token check unavailable; refusing token", "metric", "auth_cutoff_check_failed", "error", err)
			next.ServeHTTP(w, r.WithContext(httpapi.WithUncheckedToken(ctx, ErrCheckUnavailable)))
			return
		case err != nil:
			log.DebugContext(ctx, "token refused", "reason", err)
			next.ServeHTTP(w, r.WithContext(httpapi.WithRefusedToken(ctx)))
			return
		}
		httpapi.NoteCaller(ctx, p.UserID)
		next.ServeHTTP(w, r.WithContext(tempwatch.WithPrincipal(ctx, p)))
	})
}
