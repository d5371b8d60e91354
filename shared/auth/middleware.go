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
// against its user's cutoff or its session's state (PostgreSQL unreachable,
// and no cached copy): it is refused with 503, never accepted.
var ErrCheckUnavailable = tempwatch.Errorf(tempwatch.EUNAVAILABLE, "The access token cannot be checked now; try again shortly.")

// Authenticate verifies token and, when v has cutoffs, refuses a token issued
// before its user's cutoff or whose user is gone. When v has a checker it
// also refuses a token whose session ended (logout, refresh-token reuse) or
// that names no session (the auth function always names one). A cutoff or
// session state that cannot be read refuses the token too
// (ErrCheckUnavailable): Redis down means PostgreSQL answers, never "accept".
func (v *Verifier) Authenticate(ctx context.Context, token string) (tempwatch.Principal, error) {
	p, err := v.Verify(token)
	if err != nil {
		return tempwatch.Principal{}, err
	}
	switch {
	case v.checker != nil:
		if p.SessionID == "" {
			return tempwatch.Principal{}, fmt.Errorf("%w: no session", ErrInvalidToken)
		}
		st := v.checker.CheckToken(ctx, p.UserID, p.SessionID)
		if err := checkCutoff(p, st.ValidAfter, st.CutoffErr); err != nil {
			return tempwatch.Principal{}, err
		}
		if err := checkSession(st.SessionErr); err != nil {
			return tempwatch.Principal{}, err
		}
	case v.cutoffs != nil:
		cutoff, err := v.cutoffs.TokensValidAfter(ctx, p.UserID)
		if err := checkCutoff(p, cutoff, err); err != nil {
			return tempwatch.Principal{}, err
		}
	}
	return p, nil
}

// checkSession refuses a token whose session ended (err ENOTFOUND), or
// whose session's state could not be read.
func checkSession(err error) error {
	switch {
	case tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND:
		return fmt.Errorf("%w: the session ended", ErrInvalidToken)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrCheckUnavailable, err)
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
		p, err := v.Authenticate(ctx, token)
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
