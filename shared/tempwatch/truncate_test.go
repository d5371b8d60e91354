package tempwatch_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{"short", "acme", 8, "acme"},
		{"exactly n", "acme", 4, "acme"},
		{"cut", "acme-cold", 4, "acme…"},
		{"a character straddling the cut", "ab" + "é" + "cd", 3, "ab…"},
		{"a character ending at the cut", "ab" + "é" + "cd", 4, "abé…"},
		{"nothing fits", "é", 1, "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tempwatch.Truncate(tt.in, tt.n)
			assert.Equal(t, tt.want, got, "Truncate(%q, %d)", tt.in, tt.n)
			assert.True(t, utf8.ValidString(got))
			assert.LessOrEqual(t, len(strings.TrimSuffix(got, "…")), tt.n)
		})
	}
}
