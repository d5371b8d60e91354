package archive

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTextOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		cut  bool
		want *string
	}{
		{"ASCII", "abc", false, new("abc")},
		{"empty", "", false, new("")},
		{"whole multibyte", "a€", false, new("a€")},
		{"cut after one byte of three", "a\xe2", true, new("a")},
		{"cut after two bytes of three", "a\xe2\x82", true, new("a")},
		{"cut four-byte character", "a\xf0\x9f\x98", true, new("a")},
		{"a cut is only trimmed when the bytes are a head", "a\xe2\x82", false, nil},
		{"invalid inside", "\xffa", true, nil},
		{"invalid at the end is not a cut character", "a\xff", true, nil},
		{"lone continuation byte", "a\x82", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := textOf([]byte(tc.in), tc.cut)
			assert.Equal(t, tc.want, got, "textOf(%q, %v)", tc.in, tc.cut)
		})
	}
}
