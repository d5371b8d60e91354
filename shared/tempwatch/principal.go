// Who is calling: the Principal, the roles, and the tenant rules every route applies.

package tempwatch

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Roles. Every user but an admin belongs to one client.
const (
	RoleAdmin       = "admin"        // everything, every client
	RoleClientAdmin = "client_admin" // users and sensors of their own client
	RoleViewer      = "viewer"       // reads their own client
)

// Principal is the authenticated caller.
type Principal struct {
	UserID   string
	ClientID string // "" for admins
	Role     string

	// Set from a verified access token (zero in handler tests that build a
	// Principal by hand): its jti, its session (refresh-token family), and
	// when it expires. Logout revokes them.
	TokenID   string
	SessionID string
	ExpiresAt time.Time
	// ValidAfter is the user's TokensValidAfter the token was issued under
	// (its issue time for a token that carries none); the token is refused
	// once the user's cutoff is later (TokenCutoffs).
	ValidAfter time.Time
}

// ValidRole reports whether role is one of the three roles.
func ValidRole(role string) bool {
	return role == RoleAdmin || role == RoleClientAdmin || role == RoleViewer
}

// RoleRank orders roles by power (viewer < client_admin < admin), so a
// caller can be kept from granting a role above their own; 0 for unknown roles.
func RoleRank(role string) int {
	switch role {
	case RoleViewer:
		return 1
	case RoleClientAdmin:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Validate checks what a token must say: a subject, an id, a known role, and
// a client exactly when the role is not admin.
func (p Principal) Validate() error {
	switch {
	case p.UserID == "":
		return errors.New("no sub")
	case p.TokenID == "":
		return errors.New("no jti")
	case !ValidRole(p.Role):
		return fmt.Errorf("unknown role %q", p.Role)
	case (p.Role == RoleAdmin) != (p.ClientID == ""):
		return errors.New("client id does not fit the role")
	}
	return nil
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// PrincipalFrom returns the caller carried by ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// IsAdmin reports whether p may act on every client.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }
