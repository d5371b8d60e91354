package auth

import (
	"crypto/rand"
	"crypto/subtle"
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

// CheckPasswordPolicy returns the problem with password, or "" when it is acceptable.
func CheckPasswordPolicy(password string) string {
	switch n := utf8.RuneCountInString(password); {
	case !utf8.ValidString(password):
		return "must be valid UTF-8"
	case n < MinPasswordLen:
		return fmt.Sprintf("must be at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Sprintf("must be at most %d characters", MaxPasswordLen)
	}
	return ""
}

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
// admin's reset, a user's own change): it checks the policy and returns the
// argon2id hash. A policy failure is an EINVALID error naming field.
func HashNewPassword(field, password string) (string, error) {
	if msg := CheckPasswordPolicy(password); msg != "" {
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
