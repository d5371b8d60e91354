// Package session serves the /auth routes: log in with email and password,
// rotate refresh tokens, log out, who-am-I, and change one's own password.
package session

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Limits of failed password checks, each in one window. Untrusted clients
// (no valid device token for the account) count per account (logins and
// password changes together) and per source address (logins); a trusted
// client (device.go) counts only against its own device token, and neither
// of the others blocks it. A device token past its budget is untrusted until
// its window ends.
type Limits struct {
	PerAccount int
	PerAddress int
	PerDevice  int
	Window     time.Duration
}

// DefaultLimits allow, in 15 minutes, 5 failures per account and 20 per
// address to untrusted clients, and 5 to each device token.
var DefaultLimits = Limits{PerAccount: 5, PerAddress: 20, PerDevice: 5, Window: 15 * time.Minute}

// Deps is what the /auth handler needs.
type Deps struct {
	Users tempwatch.UserStore
	// Tokens keeps the refresh tokens, the record of every session; its
	// RevokeRefreshFamily (logout) and a reused token's rotation end the
	// session's access tokens too (redis.TokenCutoffs.RefreshTokens writes
	// that through to the token checks' caches).
	Tokens  tempwatch.RefreshTokenStore
	JWT     auth.JWTConfig
	Limiter tempwatch.Limiter
	Limits  Limits // zero: DefaultLimits
	// Audit records logins (and failed ones), logouts and revoked sessions;
	// password changes are recorded by Users in their own transaction.
	Audit tempwatch.AuditLog
	Log   *slog.Logger
}

// Handler serves /auth.
type Handler struct {
	Deps
	issuer *auth.Issuer
}

// NewHandler returns the /auth routes and the token key set. Login, refresh
// and the key set are public; logout,
// me and password need an authenticated caller (the function's composition
// root checks the bearer token: app.Middleware).
func NewHandler(d Deps) http.Handler {
	if d.Limits == (Limits{}) {
		d.Limits = DefaultLimits
	}
	if d.Limits.PerDevice == 0 {
		d.Limits.PerDevice = DefaultLimits.PerDevice
	}
	h := &Handler{Deps: d, issuer: auth.NewIssuer(d.JWT)}
	rt := httpapi.NewRouter(d.Log)
	rt.Public("POST /auth/login", h.handleLogin)
	rt.Public("POST /auth/refresh", h.handleRefresh)
	rt.Handle("POST /auth/logout", h.handleLogout)
	rt.Handle("GET /auth/me", h.handleMe)
	rt.Handle("POST /auth/password", h.handlePassword)
	rt.Public("GET /.well-known/jwks.json", h.handleJWKS)
	return rt
}

// JWKSMaxAge is how long clients may cache the key set. A rotation lists the
// new key for longer than this before it signs (README, "Rotating the token
// signing key"), so a cached copy always holds the key of a fresh token.
const JWKSMaxAge = 5 * time.Minute

// handleJWKS serves the public halves of the signing keys (RFC 7517), for
// whoever verifies tempwatch's tokens outside the functions.
func (h *Handler) handleJWKS(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(JWKSMaxAge.Seconds())))
	httpapi.JSON(w, http.StatusOK, h.JWT.JWKS())
	return nil
}

// TokenResponse is the body of a successful login or refresh.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	// DeviceToken (login only) marks this client trusted for this account
	// at its next logins (device.go).
	DeviceToken string `json:"device_token,omitempty"`
}

type loginRequest struct {
	// Client is the slug of the client company whose account this is; ""
	// for an admin's account (admins belong to no client). An email is
	// unique within a client, not across clients, so that no one learns
	// from a conflict that an address has an account at another company.
	Client      string `json:"client"`
	Email       string `json:"email"`
	Password    string `json:"password"`
	DeviceToken string `json:"device_token"`
}

// errBadCredentials is the one answer for an unknown email and a wrong
// password alike, so the response does not tell which accounts exist.
var errBadCredentials = tempwatch.Errorf(tempwatch.EUNAUTHORIZED,
	"The client, email or password is incorrect (the users of a client company log in with its slug as client).")

func (h *Handler) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	v := tempwatch.Validation{}
	if strings.TrimSpace(req.Email) == "" {
		v.Add("email", "is required")
	}
	if req.Password == "" {
		v.Add("password", "is required")
	}
	if req.Client != "" && !tempwatch.ValidSlug(req.Client) {
		v.Add("client", "must be a client's slug (lower-case letters, digits and hyphens), or absent for an admin")
	}
	if err := v.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	u, err := h.Users.FindUserByLogin(ctx, req.Client, strings.TrimSpace(req.Email))
	switch {
	case tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND:
		u = nil
	case err != nil:
		return err
	}
	account := loginAccount(req, u)
	limits := h.loginLimits(ctx, account, req.DeviceToken, sourceIP(r))
	if wait := h.blocked(ctx, limits...); wait > 0 {
		tooMany(w, r, h.Log, wait, "Too many failed logins; try again later.")
		return nil
	}
	if err := checkLogin(u, req.Password); err != nil {
		if errors.Is(err, errBadCredentials) {
			h.countFailure(ctx, limits...)
			h.recordFailedLogin(ctx, req, u)
		}
		return err
	}
	h.resetFailures(ctx, limits[0])
	// No token is handed out without its record.
	if err := h.Audit.RecordAudit(ctx, sessionEvent(tempwatch.ActionLogin, u.ID, u.ID, u.ClientID, "")); err != nil {
		return err
	}
	httpapi.NoteCaller(ctx, u.ID)
	return h.startSession(w, r, u, h.newDeviceToken(account, time.Now()))
}

// loginLimits are the counters a login for account is checked against and
// its failure counts on, the one a success resets first: a trusted client's
// own device token while within its budget; else the account's and the
// address's.
func (h *Handler) loginLimits(ctx context.Context, account, deviceToken, ip string) []limit {
	if nonce, ok := h.trustedDevice(deviceToken, account, time.Now()); ok {
		device := limit{"login:dev:" + nonce, h.Limits.PerDevice}
		if h.blocked(ctx, device) == 0 {
			return []limit{device}
		}
	}
	return []limit{h.accountLimit(account), {"login:addr:" + ip, h.Limits.PerAddress}}
}

// startSession opens a new session (refresh-token family) for u and answers
// with its first tokens, and device (a login's device token) if not "".
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, u *tempwatch.User, device string) error {
	family := auth.NewID()
	secret, hash := tempwatch.NewRefreshSecret()
	if err := h.Tokens.CreateRefreshToken(r.Context(), tempwatch.RefreshToken{
		FamilyID: family, UserID: u.ID, Hash: hash, ExpiresAt: time.Now().Add(h.JWT.RefreshTTL), ValidAfter: u.TokensValidAfter,
	}); err != nil {
		return err
	}
	return h.respondTokens(w, u, family, secret, device)
}

// checkLogin checks password against u's, answering errBadCredentials for a
// wrong one and for no account (u nil), which still pays for one hash check
// so that both failures take about the same time.
func checkLogin(u *tempwatch.User, password string) error {
	if u == nil {
		auth.CheckDummyPassword(password)
		return errBadCredentials
	}
	err := checkPassword(u, password)
	if errors.Is(err, auth.ErrMismatch) {
		return errBadCredentials
	}
	return err
}

// checkPassword is the one password check of login and password change:
// argon2id against u's hash, auth.ErrMismatch for a wrong password. An
// overlong password is wrong without being hashed, after a check of the usual
// cost, so no request buys more hashing than a normal attempt.
func checkPassword(u *tempwatch.User, password string) error {
	if len(password) > 4*auth.MaxPasswordLen {
		auth.CheckDummyPassword("")
		return auth.ErrMismatch
	}
	return auth.CheckPassword(u.PasswordHash, password)
}

// limit is one failure counter and how many failures it allows in a window.
type limit struct {
	key string
	max int
}

// accountLimit is the failure counter of account (loginAccount,
// userAccount), shared by logins and password changes.
func (h *Handler) accountLimit(account string) limit {
	return limit{"login:acct:" + account, h.Limits.PerAccount}
}

// blocked returns how long the caller must wait, 0 if they may try (also
// when the limiter's counters are out of reach: see tempwatch.Limiter).
func (h *Handler) blocked(ctx context.Context, limits ...limit) time.Duration {
	var wait time.Duration
	for _, l := range limits {
		wait = max(wait, h.Limiter.Blocked(ctx, l.key, l.max))
	}
	return wait
}

func (h *Handler) countFailure(ctx context.Context, limits ...limit) {
	for _, l := range limits {
		h.Limiter.Hit(ctx, l.key, h.Limits.Window)
	}
}

// resetFailures forgets the failures of the account after a right password.
func (h *Handler) resetFailures(ctx context.Context, account limit) {
	h.Limiter.Reset(ctx, account.key)
}

// tooMany answers 429 with Retry-After: wait, in whole seconds.
func tooMany(w http.ResponseWriter, r *http.Request, log *slog.Logger, wait time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	httpapi.Error(w, r, log, tempwatch.Errorf(tempwatch.ETOOMANY, "%s", msg))
}

// loginAccount names the account a login is for, in failure counters and
// device tokens: u's (userAccount), or when no account matches (u nil) the
// client and email the login named, hashed so that Redis holds no addresses.
func loginAccount(req loginRequest, u *tempwatch.User) string {
	if u != nil {
		return userAccount(u)
	}
	return accountHash("login\x00" + req.Client + "\x00" + strings.ToLower(strings.TrimSpace(req.Email)))
}

// userAccount names u's account by its id, which neither an email change nor
// a renamed client slug moves.
func userAccount(u *tempwatch.User) string { return accountHash("user\x00" + u.ID) }

func accountHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// sourceIP is the caller's address (httpapi.RemoteIP).
func sourceIP(r *http.Request) string { return httpapi.RemoteIP(r) }

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (h *Handler) handleRefresh(w http.ResponseWriter, r *http.Request) error {
	var req refreshRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return (tempwatch.Validation{"refresh_token": "is required"}).Err()
	}
	ctx := r.Context()
	secret, hash := tempwatch.NewRefreshSecret()
	next := &tempwatch.RefreshToken{Hash: hash, ExpiresAt: time.Now().Add(h.JWT.RefreshTTL)}
	old, err := h.Tokens.RotateRefreshToken(ctx, tempwatch.HashRefreshSecret(req.RefreshToken), next)
	if errors.Is(err, tempwatch.ErrRefreshReused) {
		// The family is revoked, which ends its access tokens too.
		h.Log.WarnContext(ctx, "refresh token reused; session revoked", "user_id", old.UserID, "session_id", old.FamilyID)
		h.recordReuse(ctx, old)
	}
	if err != nil {
		return err
	}
	u, err := h.Users.FindUserByID(ctx, old.UserID)
	if err != nil {
		return err
	}
	if !u.TokensValidAfter.Equal(old.ValidAfter) {
		// A change ended the user's tokens after the rotation: it revoked the
		// refresh token just made, and no access token may outlive it.
		return tempwatch.ErrRefreshInvalid
	}
	return h.respondTokens(w, u, old.FamilyID, secret, "")
}

// respondTokens issues an access token for u's current role and client (a
// refresh picks up changes) and answers with it and the refresh token.
func (h *Handler) respondTokens(w http.ResponseWriter, u *tempwatch.User, family, refresh, device string) error {
	at, err := h.issuer.Issue(u.Principal(), family)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.JSON(w, http.StatusOK, TokenResponse{
		AccessToken:  at.Token,
		TokenType:    "Bearer",
		ExpiresIn:    int(h.JWT.AccessTTL.Seconds()),
		RefreshToken: refresh,
		DeviceToken:  device,
	})
	return nil
}

// handleLogout ends the caller's session: its refresh tokens are revoked, and
// with them every access token the session issued, this one included.
func (h *Handler) handleLogout(w http.ResponseWriter, r *http.Request) error {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	ctx := r.Context()
	// Recorded first: a failure to record refuses the logout, which the
	// caller retries, rather than leave a revocation without its record.
	if err := h.Audit.RecordAudit(ctx, sessionEvent(tempwatch.ActionLogout, "", p.UserID, p.ClientID, p.SessionID)); err != nil {
		return err
	}
	if p.SessionID != "" {
		if err := h.Tokens.RevokeRefreshFamily(ctx, p.UserID, p.SessionID); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// errWrongCurrentPassword names the field, unlike a failed login: the caller
// is authenticated, so the account is no secret.
var errWrongCurrentPassword = &tempwatch.Error{Code: tempwatch.EINVALID, Message: "The current password is incorrect.",
	Fields: map[string]string{"current_password": "is incorrect"}}

// handlePassword changes the caller's own password. The current password is
// checked as a login checks it; the session is a trusted client with a budget
// of its own (Limits.PerDevice), which failed logins of others do not touch,
// and a wrong one counts against the account's login limit too, so a stolen
// access token guesses no faster than a device token would. The new one must pass the policy of user creation. Then every session
// of the user ends, this one included (the user's token cutoff moves on and
// their refresh tokens are revoked, in one transaction), and the answer
// carries the tokens of a new session, issued under the new cutoff: the
// caller stays logged in, whoever held the old tokens does not.
func (h *Handler) handlePassword(w http.ResponseWriter, r *http.Request) error {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	var req passwordRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	v := tempwatch.Validation{}
	if req.CurrentPassword == "" {
		v.Add("current_password", "is required")
	}
	switch req.NewPassword {
	case "":
		v.Add("new_password", "is required")
	case req.CurrentPassword:
		v.Add("new_password", "must differ from the current password")
	}
	if err := v.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	u, err := h.Users.FindUserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	// The session is a trusted client: its own budget, blocked by no one
	// else's failures; its failures count against the account as well.
	own := limit{"login:sess:" + cmp.Or(p.SessionID, "user:"+u.ID), h.Limits.PerDevice}
	if wait := h.blocked(ctx, own); wait > 0 {
		tooMany(w, r, h.Log, wait, "Too many wrong passwords for this account; try again later.")
		return nil
	}
	switch err := checkPassword(u, req.CurrentPassword); {
	case errors.Is(err, auth.ErrMismatch):
		h.countFailure(ctx, own, h.accountLimit(userAccount(u)))
		return errWrongCurrentPassword
	case err != nil:
		return err
	}
	h.resetFailures(ctx, own)
	hash, err := auth.HashNewPassword("new_password", req.NewPassword, u.Email)
	if err != nil {
		return err
	}
	if u.TokensValidAfter, err = h.Users.ChangePassword(ctx, u.ID, u.PasswordHash, hash); err != nil {
		return err
	}
	h.Log.InfoContext(ctx, "password changed; sessions ended", "user_id", u.ID)
	return h.startSession(w, r, u, "")
}

func (h *Handler) handleMe(w http.ResponseWriter, r *http.Request) error {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	u, err := h.Users.FindUserByID(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, u)
	return nil
}
