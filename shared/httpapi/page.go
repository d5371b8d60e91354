package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Page size limits for every list route.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// EncodeCursor returns the opaque form of c that clients pass back.
func EncodeCursor(c tempwatch.Cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ListRequest returns the caller of a list route and the page it asks for
// (ParsePage): the start of every list handler.
func ListRequest(r *http.Request) (tempwatch.Principal, tempwatch.PageRequest, error) {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return tempwatch.Principal{}, tempwatch.PageRequest{}, err
	}
	page, err := ParsePage(r)
	return p, page, err
}

// ParsePage reads limit and cursor from the query. A limit above MaxLimit is
// refused rather than silently cut, so a caller never mistakes a short page
// for the end.
func ParsePage(r *http.Request) (tempwatch.PageRequest, error) {
	q := r.URL.Query()
	p := tempwatch.PageRequest{Limit: DefaultLimit}
	v := tempwatch.Validation{}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			v.Add("limit", "must be an integer")
		case n < 1 || n > MaxLimit:
			v.Add("limit", "must be between 1 and "+strconv.Itoa(MaxLimit))
		default:
			p.Limit = n
		}
	}
	if s := q.Get("cursor"); s != "" {
		c, err := decodeCursor(s)
		if err != nil {
			v.Add("cursor", "is not a cursor returned by this API")
		} else {
			p.Cursor = c
		}
	}
	return p, v.Err()
}

func decodeCursor(s string) (*tempwatch.Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	var c tempwatch.Cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	if c.CreatedAt.IsZero() || c.ID == "" {
		return nil, tempwatch.Errorf(tempwatch.EINVALID, "empty cursor")
	}
	return &c, nil
}

// Page is the body of every list response.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
	HasMore    bool   `json:"has_more"`
}

// NewPage builds a page from up to limit+1 fetched items: the extra item,
// when present, only tells that there is a next page.
func NewPage[T any](items []T, limit int, cursorOf func(T) tempwatch.Cursor) Page[T] {
	p := Page[T]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.HasMore = true
		p.NextCursor = EncodeCursor(cursorOf(p.Items[limit-1]))
	}
	if p.Items == nil {
		p.Items = []T{}
	}
	return p
}

// ParseTimeRange reads the optional RFC 3339 from and to bounds of a list
// query (zero when absent), adding to v what is wrong with them
// (unparsable, or to not after from).
func ParseTimeRange(q url.Values, v tempwatch.Validation) (from, to time.Time) {
	parse := func(name string) time.Time {
		s := q.Get(name)
		if s == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			v.Add(name, "must be an RFC 3339 time such as 2026-01-31T23:00:00Z")
		}
		return t
	}
	from, to = parse("from"), parse("to")
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		v.Add("to", "must be after from")
	}
	return from, to
}
