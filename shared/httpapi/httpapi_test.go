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
