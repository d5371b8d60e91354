package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func TestStatusTable(t *testing.T) {
	tests := []struct {
		code string
		want int
	}{
		{tempwatch.EINVALID, 400},
		{tempwatch.EUNAUTHORIZED, 401},
		{tempwatch.EFORBIDDEN, 403},
		{tempwatch.ENOTFOUND, 404},
		{tempwatch.ECONFLICT, 409},
		{tempwatch.ETOOLARGE, 413},
		{tempwatch.ETOOMANY, 429},
		{tempwatch.EINTERNAL, 500},
		{tempwatch.EUNAVAILABLE, 503},
		{"made-up", 500},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, httpapi.Status(tt.code), "Status(%q)", tt.code)
	}
}

func TestErrorHidesInternalDetailsButLogsThem(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/x", nil)
	httpapi.Error(w, r, log, errors.New("dial tcp 10.0.0.1:5432: password=hunter2"))

	assert.Equal(t, 500, w.Code)
	assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	assert.NotContains(t, w.Body.String(), "hunter2")
	var p httpapi.Problem
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	assert.Equal(t, tempwatch.EINTERNAL, p.Code)
	assert.Equal(t, 500, p.Status)
	assert.Contains(t, logs.String(), "hunter2", "the operator needs the real cause in the log")
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	tests := []struct {
		name      string
		ct        string
		body      string
		wantField string
		wantErr   bool
	}{
		{"ok", "application/json", `{"name":"a","n":1}`, "", false},
		{"ok without content type", "", `{"name":"a"}`, "", false},
		{"ok problem+json type", "application/merge-patch+json", `{"name":"a"}`, "", false},
		{"wrong content type", "text/plain", `{"name":"a"}`, "", true},
		{"empty", "application/json", ``, "", true},
		{"syntax", "application/json", `{"name":}`, "", true},
		{"unknown field", "application/json", `{"nme":"a"}`, "nme", true},
		{"wrong type", "application/json", `{"n":"x"}`, "n", true},
		{"trailing value", "application/json", `{"n":1}{"n":2}`, "", true},
		{"too large", "application/json", `{"name":"` + strings.Repeat("a", httpapi.MaxBodyBytes) + `"}`, "", true},
		{"NUL in a value", "application/json", `{"name":"a\u0000b"}`, "name", true},
		{"invalid UTF-8 in a value", "application/json", "{\"name\":\"a\xffb\"}", "name", true},
		{"NUL in a key", "application/json", `{"na\u0000me":"a"}`, `"na\x00me"`, true},
		{"NUL deep down", "application/json", `{"name":"a","n":1,"x":{"y":[1,"ok",{"z":"\u0000"}]}}`, "x.y[2].z", true},
		{"NUL in a top-level string", "application/json", `"\u0000"`, "body", true},
		{"too deep", "application/json", strings.Repeat("[", httpapi.MaxJSONDepth+1) + strings.Repeat("]", httpapi.MaxJSONDepth+1), "body", true},
		{"NUL escaped as text is fine", "application/json", `{"name":"a","nme":"\\u0000"}`, "nme", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			var b body
			err := httpapi.DecodeJSON(r, &b)
			if !tt.wantErr {
				require.NoError(t, err)
				assert.Equal(t, "a", b.Name)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tempwatch.EINVALID, tempwatch.ErrorCode(err))
			if tt.wantField != "" {
				assert.Contains(t, tempwatch.ErrorFields(err), tt.wantField)
			}
		})
	}
}

func TestParsePageAndCursorRoundTrip(t *testing.T) {
	r := httptest.NewRequest("GET", "/x?limit=2", nil)
	p, err := httpapi.ParsePage(r)
	require.NoError(t, err)
	assert.Equal(t, 2, p.Limit)
	assert.Nil(t, p.Cursor)

	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	items := []int{3, 2, 1}
	page := httpapi.NewPage(items, 2, func(i int) tempwatch.Cursor { return tempwatch.Cursor{CreatedAt: at, ID: "id-2"} })
	assert.Equal(t, []int{3, 2}, page.Items)
	assert.True(t, page.HasMore)

	r = httptest.NewRequest("GET", "/x?cursor="+page.NextCursor, nil)
	p, err = httpapi.ParsePage(r)
	require.NoError(t, err)
	require.NotNil(t, p.Cursor)
	assert.True(t, at.Equal(p.Cursor.CreatedAt))
	assert.Equal(t, "id-2", p.Cursor.ID)
	assert.Equal(t, httpapi.DefaultLimit, p.Limit)

	last := httpapi.NewPage([]int{}, 2, nil)
	assert.False(t, last.HasMore)
	assert.Empty(t, last.NextCursor)
	assert.NotNil(t, last.Items, "an empty page lists [] not null")
}

func TestWrapRequestIDAndPanic(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := httpapi.Wrap(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		w.WriteHeader(http.StatusTeapot)
	}))

	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/ok", nil)
	r.Header.Set("X-Request-Id", "abc-123")
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusTeapot, w.Code)
	assert.Equal(t, "abc-123", w.Header().Get("X-Request-Id"))

	w = httptest.NewRecorder()
	r = httptest.NewRequest("GET", "/panic", nil)
	r.Header.Set("X-Request-Id", "bad id\nwith newline")
	h.ServeHTTP(w, r)
	assert.Equal(t, 500, w.Code)
	assert.Len(t, w.Header().Get("X-Request-Id"), 32, "an unsafe request id is replaced")
	assert.NotContains(t, w.Body.String(), "boom")
}

// A NUL, invalid UTF-8 or a malformed escape in a path or query parameter
// is a 400 naming it before the handler runs; a well-formed escape reaches
// the handler decoded.
func TestRouterChecksPathAndQuery(t *testing.T) {
	rt := httpapi.NewRouter(slog.New(slog.DiscardHandler))
	rt.Public("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) error {
		httpapi.JSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id"), "name": r.URL.Query().Get("name")})
		return nil
	})
	tests := []struct {
		name, target string
		field        string // "" for a 200
		want         string // the body of a 200
	}{
		{"plain", "/things/42?name=x", "", `{"id":"42","name":"x"}`},
		{"escaped percent", "/things/%25?name=100%25", "", `{"id":"%","name":"100%"}`},
		{"unicode", "/things/%C3%A4?name=%E2%82%AC", "", `{"id":"ä","name":"€"}`},
		{"NUL in the path", "/things/a%00b", "id", ""},
		{"invalid UTF-8 in the path", "/things/%ff", "id", ""},
		{"NUL in the query", "/things/1?name=%00", "name", ""},
		{"invalid UTF-8 in the query", "/things/1?name=%C3", "name", ""},
		{"malformed escape", "/things/1?name=%zz", "name", ""},
		{"truncated escape", "/things/1?limit=5&name=%4", "name", ""},
		{"malformed escape in a name", "/things/1?na%zme=1", "na%zme", ""},
		{"semicolon", "/things/1?name=a;b=c", "name", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, httptest.NewRequest("GET", tt.target, nil))
			if tt.field == "" {
				require.Equal(t, http.StatusOK, w.Code, w.Body.String())
				assert.JSONEq(t, tt.want, w.Body.String())
				return
			}
			require.Equal(t, http.StatusBadRequest, w.Code, "GET %s: %s", tt.target, w.Body.String())
			var p httpapi.Problem
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
			assert.Equal(t, tempwatch.EINVALID, p.Code)
			assert.Contains(t, p.Errors, tt.field, "GET %s names the parameter", tt.target)
		})
	}
}

// Every response says nosniff; an authenticated route's answers are
// no-store; the Bearer challenge has an error code only for a token that
// was sent and refused (RFC 6750 §3).
func TestSecurityHeaders(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	rt := httpapi.NewRouter(log)
	rt.Handle("GET /mine", func(w http.ResponseWriter, r *http.Request) error {
		httpapi.ServeJSON(w, r, []byte(`{}`))
		return nil
	})
	rt.Public("GET /open", func(w http.ResponseWriter, r *http.Request) error { return nil })
	h := httpapi.Wrap(log, rt)
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	for _, target := range []string{"/mine", "/open", "/nowhere"} {
		assert.Equal(t, "nosniff", serve(httptest.NewRequest("GET", target, nil)).Header().Get("X-Content-Type-Options"), target)
	}

	anonymous := serve(httptest.NewRequest("GET", "/mine", nil))
	assert.Equal(t, http.StatusUnauthorized, anonymous.Code)
	assert.Equal(t, `Bearer realm="tempwatch"`, anonymous.Header().Get("WWW-Authenticate"))

	refused := httptest.NewRequest("GET", "/mine", nil)
	refused = refused.WithContext(httpapi.WithRefusedToken(refused.Context()))
	w := serve(refused)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Equal(t, `Bearer realm="tempwatch", error="invalid_token"`, w.Header().Get("WWW-Authenticate"))

	mine := httptest.NewRequest("GET", "/mine", nil)
	mine = mine.WithContext(tempwatch.WithPrincipal(mine.Context(), tempwatch.Principal{UserID: "u", Role: tempwatch.RoleAdmin}))
	w = serve(mine)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	assert.NotEmpty(t, w.Header().Get("ETag"))
}
