package auth_test

import (
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := auth.HashPassword("correct horse battery")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$"), h)
	assert.NoError(t, auth.CheckPassword(h, "correct horse battery"))
	assert.ErrorIs(t, auth.CheckPassword(h, "correct horse batterY"), auth.ErrMismatch)
	h2, err := auth.HashPassword("correct horse battery")
	require.NoError(t, err)
	assert.NotEqual(t, h, h2, "salts must differ")
	err = auth.CheckPassword("$2a$10$notargon", "x")
	assert.Error(t, err)
	assert.NotErrorIs(t, err, auth.ErrMismatch)
}

func TestPasswordPolicy(t *testing.T) {
	t.Parallel()
	const email = "Jane.Doe@Example.com"
	tests := []struct {
		name, pw string
		want     string // a part of the refusal; "" when accepted
	}{
		{"too short", "elevenchars", "at least 12"},
		{"twelve", "twelve chars", ""},
		{"twelve runes multibyte", "äöüßéèêëïîôû", ""},
		{"128", strings.Repeat("abcdefgh", 15) + "12345678", ""},
		{"129", strings.Repeat("abcdefgh", 16) + "1", "at most 128"},
		{"invalid utf8", "\xff\xfe" + strings.Repeat("a", 12), "UTF-8"},
		{"common", "1qaz2wsx3edc", "most common"},
		{"common, another case", "1QAZ2WSX3EDC", "most common"},
		{"common, mixed case on the list", "mailcreated5240", "most common"},
		{"the email", "jane.doe@example.com", "email address"},
		{"the email in another case, inside", "xx" + email + "!!", "email address"},
		{"the local part", "JANE.DOE", "at least 12"},
		{"the local part inside", "my jane.doe pass", "before the @"},
		{"one character repeated", "aaaaaaaaaaaa", "4 different"},
		{"few characters", "abababababac", "4 different"},
		{"a pattern repeated", "abcdabcdabcd", "repeat"},
		{"a longer pattern repeated", "hunter2!hunter2!", "repeat"},
		{"digits up, wrapping", "123456789012", "run"},
		{"digits down, wrapping", "210987654321", "run"},
		{"letters up", "abcdefghijkl", "run"},
		{"letters down", "zyxwvutsrqpo", "run"},
		{"keyboard", "yuiopasdfghj", "keyboard"},
		{"keyboard backwards", "lkjhgfdsapoiu", "keyboard"},
		{"AZERTY keyboard", "azertyuiopqsd", "keyboard"},
		{"a passphrase", "correct horse battery staple", ""},
		{"a short local part may appear", "jo loves long walks", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mail := email
			if tt.name == "a short local part may appear" {
				mail = "jo@example.com"
			}
			got := auth.CheckPasswordPolicy(tt.pw, mail)
			if tt.want == "" {
				assert.Empty(t, got, "CheckPasswordPolicy(%q, %q)", tt.pw, mail)
				return
			}
			assert.Contains(t, got, tt.want, "CheckPasswordPolicy(%q, %q)", tt.pw, mail)
		})
	}
}

// The embedded list is the whole of SecLists' 10,000, each refused in
// any case it is typed in.
func TestPasswordPolicyRefusesEveryCommonPassword(t *testing.T) {
	t.Parallel()
	list, err := os.ReadFile("common-passwords.txt")
	require.NoError(t, err)
	var n int
	for _, pw := range strings.Split(string(list), "\n") {
		if pw == "" {
			continue
		}
		n++
		if utf8.RuneCountInString(pw) < auth.MinPasswordLen {
			continue // refused for its length already
		}
		for _, typed := range []string{pw, strings.ToUpper(pw), strings.ToLower(pw)} {
			assert.NotEmpty(t, auth.CheckPasswordPolicy(typed, "someone@example.com"), "common password %q", typed)
		}
	}
	assert.Equal(t, 10000, n, "the list holds the 10,000 most common passwords")
}

// HashNewPassword's refusal names the field and says why.
func TestHashNewPasswordNamesTheField(t *testing.T) {
	t.Parallel()
	_, err := auth.HashNewPassword("new_password", "ops@acme.example!", "ops@acme.example")
	require.Error(t, err)
	assert.Equal(t, tempwatch.EINVALID, tempwatch.ErrorCode(err))
	assert.Equal(t, map[string]string{"new_password": "must not be or contain your email address"}, tempwatch.ErrorFields(err))
}
