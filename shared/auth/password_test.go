package auth_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
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
	tests := []struct {
		name, pw string
		ok       bool
	}{
		{"too short", "elevenchars", false},
		{"twelve", "twelve chars", true},
		{"twelve runes multibyte", "äöüäöüäöüäöü", true},
		{"128", strings.Repeat("a", 128), true},
		{"129", strings.Repeat("a", 129), false},
		{"invalid utf8", "\xff\xfe" + strings.Repeat("a", 12), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := auth.CheckPasswordPolicy(tt.pw)
			assert.Equal(t, tt.ok, got == "", "CheckPasswordPolicy(%q) = %q", tt.pw, got)
		})
	}
}
