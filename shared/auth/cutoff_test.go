package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// A token passes while its user's cutoff is the one it was issued under, and
// not once the cutoff moved on, however little: a change and a token in the
// same second (or microsecond) are told apart, because the token carries the
// stored cutoff rather than a clock reading.
func TestVerifierChecksTheUsersCutoff(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	ctx := context.Background()
	userID := auth.NewID()
	// A cutoff set in this second, and the next one a change right after it sets.
	before := time.Now().Truncate(time.Microsecond)
	after := before.Add(time.Microsecond)
	var current time.Time
	var lookupErr error
	cutoffs := &mock.TokenCutoffs{TokensValidAfterFn: func(_ context.Context, id string) (time.Time, error) {
		assert.Equal(t, userID, id)
		return current, lookupErr
	}}
	v := auth.NewVerifier(cfg).WithCutoffs(cutoffs)
	issue := func(validAfter time.Time) string {
		tok, err := auth.NewIssuer(cfg).Issue(tempwatch.Principal{UserID: userID, Role: tempwatch.RoleAdmin, ValidAfter: validAfter}, "")
		require.NoError(t, err)
		return tok.Token
	}
	oldToken, newToken := issue(before), issue(after)
	// A token of a build before the claim: it counts from its iat, whole
	// seconds, issued this second.
	legacy := sign(t, jwt.SigningMethodEdDSA, "k2", cfg.SigningKeys["k2"], jwt.MapClaims{
		"iss": cfg.Issuer, "aud": cfg.Audience, "sub": userID, "jti": auth.NewID(), "role": tempwatch.RoleAdmin,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
	})

	tests := []struct {
		name    string
		token   string
		cutoff  time.Time
		err     error
		wantErr error
	}{
		{"issued under the current cutoff", oldToken, before, nil, nil},
		{"the cutoff moved on by a microsecond", oldToken, after, nil, auth.ErrInvalidToken},
		{"issued under the new cutoff, the same second", newToken, after, nil, nil},
		{"legacy token, no change since", legacy, time.Unix(0, 0), nil, nil},
		{"legacy token, a change in its own second", legacy, time.Now().Truncate(time.Second).Add(time.Microsecond), nil, auth.ErrInvalidToken},
		{"user gone", newToken, time.Time{}, tempwatch.NotFound("User"), auth.ErrInvalidToken},
		{"cutoff unreadable", newToken, time.Time{}, errors.New("postgres down"), auth.ErrCheckUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			current, lookupErr = tt.cutoff, tt.err
			_, err := v.Authenticate(ctx, tt.token)
			if tt.wantErr == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

// A checker answering both questions at once decides the cutoff as
// WithCutoffs does: a later cutoff or a gone user refuses, an unreadable
// cutoff is ErrCheckUnavailable. (Session states: TestMiddlewareSession.)
func TestVerifierWithChecker(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	userID := auth.NewID()
	validAfter := time.Now().Truncate(time.Microsecond)
	tok, err := auth.NewIssuer(cfg).Issue(tempwatch.Principal{UserID: userID, Role: tempwatch.RoleAdmin, ValidAfter: validAfter}, "sess-1")
	require.NoError(t, err)

	tests := []struct {
		name    string
		status  tempwatch.TokenStatus
		wantErr error
	}{
		{"current cutoff, live session", tempwatch.TokenStatus{ValidAfter: validAfter}, nil},
		{"a later cutoff", tempwatch.TokenStatus{ValidAfter: validAfter.Add(time.Microsecond)}, auth.ErrInvalidToken},
		{"the user is gone", tempwatch.TokenStatus{CutoffErr: tempwatch.NotFound("User")}, auth.ErrInvalidToken},
		{"the cutoff cannot be read", tempwatch.TokenStatus{CutoffErr: errors.New("down")}, auth.ErrCheckUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checker := &mock.TokenChecker{CheckTokenFn: func(_ context.Context, id, sessionID string) tempwatch.TokenStatus {
				assert.Equal(t, userID, id)
				assert.Equal(t, "sess-1", sessionID)
				return tt.status
			}}
			p, err := auth.NewVerifier(cfg).WithChecker(checker).Authenticate(context.Background(), tok.Token)
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, userID, p.UserID)
				return
			}
			assert.ErrorIs(t, err, tt.wantErr)
		})
	}
}
