package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Every string a request carries (path parameters, query parameters, JSON
// body fields) is checked here before any handler sees it: PostgreSQL
// refuses a NUL in text and invalid UTF-8 would be stored or echoed garbled,
// so either is a 400 naming the field, never a driver error. The router
// checks paths and queries (checkPathAndQuery), DecodeJSON the bodies
// (checkJSONStrings).

// MaxJSONDepth bounds the nesting of a JSON body; no body of this API
// nests more than a few levels.
const MaxJSONDepth = 32

// badString returns why s cannot be taken as text, or "".
func badString(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain a NUL character"
	}
	return ""
}

// checkPathAndQuery refuses r when a path parameter of its route (pattern,
// in net/http's syntax) or its query holds what badString refuses, or when
// the query has a malformed percent-escape: net/http's parser would drop
// such a pair without a word, so a caller's filter would silently not apply.
func checkPathAndQuery(r *http.Request, pattern string) error {
	v := tempwatch.Validation{}
	for _, name := range wildcards(pattern) {
		if msg := badString(r.PathValue(name)); msg != "" {
			v.Add(name, msg)
		}
	}
	if msg := badString(r.URL.Path); msg != "" && len(v) == 0 {
		v.Add("path", msg)
	}
	for _, pair := range strings.Split(r.URL.RawQuery, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			v.Add(rawKey, "has a malformed percent-escape in its name (write % as %25)")
			continue
		}
		if strings.Contains(pair, ";") {
			v.Add(key, "contains ';': separate query parameters with '&'")
			continue
		}
		if msg := badString(key); msg != "" {
			v.Add(strconv.Quote(key), "is a query parameter name that "+msg)
			continue
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			v.Add(key, "has a malformed percent-escape (write % as %25)")
			continue
		}
		if msg := badString(value); msg != "" {
			v.Add(key, msg)
		}
	}
	return v.Err()
}

// wildcards returns the names of pattern's {wildcards}.
func wildcards(pattern string) []string {
	var names []string
	for {
		_, rest, ok := strings.Cut(pattern, "{")
		if !ok {
			return names
		}
		name, after, _ := strings.Cut(rest, "}")
		names = append(names, strings.TrimSuffix(name, "..."))
		pattern = after
	}
}

// checkJSONStrings walks the first JSON value of body and refuses a string
// (value or object key) that badString refuses, naming its field, and
// nesting deeper than MaxJSONDepth. Syntax errors are left to the decoder,
// which says where they are: the walk then returns nil.
func checkJSONStrings(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []*jsonFrame
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil //nolint:nilerr // a syntax error is the decoder's to report, with its offset
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isKey := top != nil && top.object && top.wantKey
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) >= MaxJSONDepth {
					return tempwatch.Invalid("body", fmt.Sprintf("nests deeper than %d levels", MaxJSONDepth))
				}
				stack = append(stack, &jsonFrame{object: t == '{', wantKey: t == '{'})
			default: // a container ends: one value of its parent is done
				stack = stack[:len(stack)-1]
				if len(stack) > 0 {
					stack[len(stack)-1].valueDone()
				}
			}
		case string:
			msg := badString(t)
			if !utf8.Valid(body[start:dec.InputOffset()]) {
				msg = "must be valid UTF-8" // the decoder has replaced the bad bytes
			}
			if isKey {
				if msg != "" {
					return tempwatch.Invalid(fieldPath(stack, strconv.Quote(t)), "is a field name that "+msg)
				}
				top.key, top.wantKey = t, false
				continue
			}
			if msg != "" {
				return tempwatch.Invalid(fieldPath(stack, ""), msg)
			}
			top.valueDone()
		default:
			top.valueDone()
		}
		if len(stack) == 0 {
			return nil
		}
	}
}

// jsonFrame is an object or array being walked by checkJSONStrings.
type jsonFrame struct {
	object  bool
	wantKey bool   // an object's next string is a key
	key     string // an object's current key
	index   int    // an array's current index
}

// valueDone moves f past one value (f nil: the top-level value).
func (f *jsonFrame) valueDone() {
	switch {
	case f == nil:
	case f.object:
		f.wantKey = true
	default:
		f.index++
	}
}

// fieldPath names the value the walk is at, as the decoder names fields
// (a.b, with [i] for array items), then key if not "": "body" when that
// is nothing.
func fieldPath(stack []*jsonFrame, key string) string {
	var b strings.Builder
	for _, f := range stack {
		switch {
		case f.object && f.key != "" && !f.wantKey:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		case !f.object:
			fmt.Fprintf(&b, "[%d]", f.index)
		}
	}
	if key != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(key)
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}
