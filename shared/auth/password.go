package auth

import (
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Password hashing: argon2id with OWASP's recommended minimum parameters
// (m = 19 MiB, t = 2, p = 1), 16-byte salt, 32-byte key, stored in the PHC
// string format so parameters can be raised later without breaking old hashes.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// Password length limits (in characters). The upper bound keeps hashing cost bounded.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 128
)

// ErrMismatch is returned by CheckPassword for a wrong password.
var ErrMismatch = errors.New("auth: password does not match")

// CheckPasswordPolicy returns the problem with password as the password of
// the account with email, or "" when it is acceptable: 12 to 128
// characters of valid UTF-8, not one of the 10,000 most common passwords
// (compared case-insensitively), not the email or its part before the @
// and not containing them, and not trivial (one short pattern repeated,
// a run such as 123456789012 or abcdefghijkl or a keyboard row, fewer than
// four different characters).
func CheckPasswordPolicy(password, email string) string {
	switch n := utf8.RuneCountInString(password); {
	case !utf8.ValidString(password):
		return "must be valid UTF-8"
	case n < MinPasswordLen:
		return fmt.Sprintf("must be at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Sprintf("must be at most %d characters", MaxPasswordLen)
	}
	lower := strings.ToLower(password)
	if _, common := commonPasswords()[lower]; common {
		return "is one of the 10,000 most common passwords; choose another"
	}
	email = strings.ToLower(strings.TrimSpace(email))
	local, _, _ := strings.Cut(email, "@")
	switch {
	case email != "" && strings.Contains(lower, email):
		return "must not be or contain your email address"
	case lower == local || utf8.RuneCountInString(local) >= minEmailPartLen && strings.Contains(lower, local):
		return "must not be or contain the part of your email address before the @"
	}
	return trivial([]rune(lower))
}

// minEmailPartLen is the shortest part of an email before the @ that a
// password may not contain: shorter ones (jo@…) are in too many good passwords.
const minEmailPartLen = 4

// keyboardRows are the rows of QWERTY, QWERTZ and AZERTY keyboards, top to
// bottom, run together: a password of MinPasswordLen characters only fits
// in rows taken together. No password may be a stretch of one (either way).
var keyboardRows = []string{
	"1234567890qwertyuiopasdfghjklzxcvbnm",
	"1234567890qwertzuiopasdfghjklyxcvbnm",
	"1234567890azertyuiopqsdfghjklmwxcvbn",
}

// trivial returns why the lower-cased password pw is trivial, or "".
func trivial(pw []rune) string {
	distinct := map[rune]bool{}
	for _, r := range pw {
		distinct[r] = true
	}
	if len(distinct) < 4 {
		return "must use at least 4 different characters"
	}
	for unit := 1; unit <= len(pw)/2; unit++ {
		if len(pw)%unit == 0 && repeats(pw, unit) {
			return "must not repeat a short pattern"
		}
	}
	if isRun(pw) {
		return "must not be a run of characters such as 123456789012 or abcdefghijkl"
	}
	s := string(pw)
	for _, row := range keyboardRows {
		if strings.Contains(row, s) || strings.Contains(reverse(row), s) {
			return "must not be a row of the keyboard"
		}
	}
	return ""
}

// repeats reports whether pw is its first unit runes over and over.
func repeats(pw []rune, unit int) bool {
	for i := unit; i < len(pw); i++ {
		if pw[i] != pw[i-unit] {
			return false
		}
	}
	return true
}

// isRun reports whether each rune of pw follows the one before by the same
// step of one up or down; digits wrap (…8, 9, 0, 1…).
func isRun(pw []rune) bool {
	step := func(a, b rune) rune {
		d := b - a
		if isDigit(a) && isDigit(b) {
			d = (d + 10) % 10
			if d == 9 {
				d = -1
			}
		}
		return d
	}
	first := step(pw[0], pw[1])
	if first != 1 && first != -1 {
		return false
	}
	for i := 2; i < len(pw); i++ {
		if step(pw[i-1], pw[i]) != first {
			return false
		}
	}
	return true
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// commonPasswordList is SecLists' list of the 10,000 most common passwords
// (MIT, Daniel Miessler; provenance and licence in common-passwords.LICENSE).
//
//go:embed common-passwords.txt
var commonPasswordList string

// commonPasswords is the list as a set of lower-case passwords, built on
// first use: functions that take no new password do not pay for it.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 10000)
	for _, pw := range strings.Split(commonPasswordList, "\n") {
		if pw = strings.TrimSpace(pw); pw != "" {
			set[strings.ToLower(pw)] = struct{}{}
		}
	}
	return set
})

// HashPassword returns the argon2id PHC string of password.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// HashNewPassword is how every new password is accepted (user creation, an
// admin's reset, a user's own change): it checks the policy for the account
// with email and returns the argon2id hash. A policy failure is an EINVALID
// error naming field.
func HashNewPassword(field, password, email string) (string, error) {
	if msg := CheckPasswordPolicy(password, email); msg != "" {
		return "", (tempwatch.Validation{field: msg}).Err()
	}
	return HashPassword(password)
}

// CheckPassword compares password with a PHC hash from HashPassword, in
// constant time. It returns ErrMismatch for a wrong password and another
// error for a malformed hash.
func CheckPassword(hash, password string) error {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("auth: password hash is not argon2id PHC")
	}
	var version int
	var mem, iter uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return errors.New("auth: unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iter, &threads); err != nil || mem == 0 || iter == 0 || threads == 0 {
		return errors.New("auth: bad argon2 parameters")
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return errors.New("auth: bad argon2 salt")
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return errors.New("auth: bad argon2 key")
	}
	got := argon2.IDKey([]byte(password), salt, iter, mem, threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// dummyHash is checked against when the account does not exist, so an
// unknown email costs the same time as a wrong password. Made on first use:
// functions that never log anyone in do not pay for it at cold start.
var dummyHash = sync.OnceValue(func() string {
	h, err := HashPassword("tempwatch-dummy-password-for-timing")
	if err != nil {
		panic(err)
	}
	return h
})

// CheckDummyPassword spends the time CheckPassword would, for an unknown account.
func CheckDummyPassword(password string) { _ = CheckPassword(dummyHash(), password) }
