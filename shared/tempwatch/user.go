package tempwatch

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// User is a person who logs in. Every user but an admin belongs to one client.
type User struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id,omitempty"` // "" for admins
	Email    string `json:"email"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	// PasswordHash is the argon2id PHC string; never serialised.
	PasswordHash string `json:"-"`
	// TokensValidAfter is the user's token cutoff (see TokenCutoffs): the
	// tokens issued to u carry it, and a change that ends them moves it on.
	TokensValidAfter time.Time `json:"-"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// Principal returns the caller u becomes after logging in.
func (u *User) Principal() Principal {
	return Principal{UserID: u.ID, ClientID: u.ClientID, Role: u.Role, ValidAfter: u.TokensValidAfter}
}

// UserFilter selects users for a list.
type UserFilter struct {
	ClientID string // "" for every client (admins only)
	Role     string
	Page     PageRequest
}

// UserStore keeps users.
type UserStore interface {
	// CreateUser inserts u (PasswordHash set) and fills its id and timestamps.
	CreateUser(ctx context.Context, u *User) error
	FindUserByID(ctx context.Context, id string) (*User, error)
	// FindUserByLogin returns the account a login names: the user with
	// email (case-insensitively) of the client with slug client, or of no
	// client (an admin) when client is "". An email is unique per client,
	// not across clients.
	FindUserByLogin(ctx context.Context, client, email string) (*User, error)
	// FindUsers returns up to f.Page.Limit+1 users, newest first.
	FindUsers(ctx context.Context, f UserFilter) ([]*User, error)
	// UpdateUser stores every field of u; a changed role, client or
	// password hash ends the user's tokens (EndsTokens) and u gets the new
	// TokensValidAfter. A u read before another change of the user, and
	// taking the admin role from the last admin, are ECONFLICT.
	UpdateUser(ctx context.Context, u *User) error
	// ChangePassword replaces user id's password hash with newHash if it is
	// still oldHash (else ECONFLICT), ends the user's tokens, and returns the
	// new TokensValidAfter, which the caller's new session is issued under.
	ChangePassword(ctx context.Context, id, oldHash, newHash string) (time.Time, error)
	// DeleteUser removes user id (and so every token of theirs); deleting
	// the last admin is ECONFLICT.
	DeleteUser(ctx context.Context, id string) error
}

// EndsTokens reports whether changing the user from old to u takes away
// access the user's live tokens carry: their role, their client, or the
// password they were obtained with.
func (u *User) EndsTokens(old *User) bool {
	return u.Role != old.Role || u.ClientID != old.ClientID || u.PasswordHash != old.PasswordHash
}

// Validate checks u's fields, naming each bad one.
func (u *User) Validate() error {
	v := u.FieldProblems()
	if u.PasswordHash == "" {
		v.Add("password", "is required")
	}
	return v.Err()
}

// FieldProblems are the problems Validate finds but a missing password hash:
// a caller adds the new password's and refuses a bad request before the
// costly hashing.
func (u *User) FieldProblems() Validation {
	v := Validation{}
	if msg := checkEmail(u.Email); msg != "" {
		v.Add("email", msg)
	}
	if utf8.RuneCountInString(u.Name) > 200 {
		v.Add("name", "must be at most 200 characters")
	}
	switch {
	case !ValidRole(u.Role):
		v.Add("role", "must be one of admin, client_admin, viewer")
	case u.Role == RoleAdmin && u.ClientID != "":
		v.Add("client_id", "must be empty for an admin")
	case u.Role != RoleAdmin && u.ClientID == "":
		v.Add("client_id", "is required for role "+u.Role)
	case u.ClientID != "" && !IsUUID(u.ClientID):
		v.Add("client_id", "must be a client id")
	}
	return v
}

func checkEmail(e string) string {
	local, domain, ok := strings.Cut(e, "@")
	switch {
	case e == "":
		return "is required"
	case len(e) > 254:
		return "must be at most 254 characters"
	case !ok || local == "" || domain == "" || strings.ContainsAny(e, " \t\r\n<>,;") || strings.Contains(domain, "@"):
		return "must be an email address such as ada@example.com"
	}
	return ""
}
