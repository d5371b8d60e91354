package tempwatch_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The rules ValidSlug and ValidDeviceID spell out byte by byte, as the
// schema and the API documentation state them.
var (
	slugRule     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	deviceIDRule = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// names are the edges the rules have: every byte alone and after a valid
// one, the length limits, and what topics and usernames carry.
func names() []string {
	out := []string{"", "a", "-a", "a-", "acme", "acme/cr-1", "cr.1", "CR_1", "a b", "ü", "acmе", "+", "#", "..",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65)}
	for b := range 256 {
		out = append(out, string([]byte{byte(b)}), "a"+string([]byte{byte(b)}))
	}
	return out
}

func TestValidNamesFollowTheirRules(t *testing.T) {
	for _, s := range names() {
		if got, want := tempwatch.ValidSlug(s), slugRule.MatchString(s); got != want {
			t.Errorf("ValidSlug(%q) = %v, want %v", s, got, want)
		}
		if got, want := tempwatch.ValidDeviceID(s), deviceIDRule.MatchString(s); got != want {
			t.Errorf("ValidDeviceID(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzValidNames(f *testing.F) {
	for _, s := range names() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := tempwatch.ValidSlug(s), slugRule.MatchString(s); got != want {
			t.Errorf("ValidSlug(%q) = %v, want %v", s, got, want)
		}
		if got, want := tempwatch.ValidDeviceID(s), deviceIDRule.MatchString(s); got != want {
			t.Errorf("ValidDeviceID(%q) = %v, want %v", s, got, want)
		}
	})
}
