package tempwatch

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxAckComment is the longest acknowledgement comment, in characters, as
// the alarms table holds it.
const MaxAckComment = 1000

// ValidateAckComment checks the comment of an acknowledgement: at most
// MaxAckComment characters of valid UTF-8 and no control characters, so
// what notifications and exports carry is one line of plain text.
func ValidateAckComment(comment string) error {
	switch {
	case !utf8.ValidString(comment):
		return Invalid("comment", "must be UTF-8 text")
	case utf8.RuneCountInString(comment) > MaxAckComment:
		return Invalid("comment", fmt.Sprintf("must be at most %d characters", MaxAckComment))
	case strings.ContainsFunc(comment, unicode.IsControl):
		return Invalid("comment", "must not hold control characters (NUL, line breaks, tabs, escapes)")
	}
	return nil
}
