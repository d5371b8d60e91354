package openapitest_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tempwatch/tempwatch/shared/openapi/openapitest"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }

func TestCheck(t *testing.T) {
	const problem = `{"type":"https://tempwatch.dev/problems/not_found","title":"Not Found","status":404,"code":"not_found"}`
	const measurement = `{"id":7,"sensor_id":"6f1c1f1e-0000-4000-8000-000000000001","value":1.5,` +
		`"measured_at":"2026-01-01T00:00:00Z","created_at":"2026-01-01T00:00:01Z"}`
	tests := []struct {
		name        string
		method      string
		path        string
		status      int
		contentType string
		body        string
		wantFail    bool
	}{
		{"documented body", "GET", "/measurements/7", 200, "application/json", measurement, false},
		{"problem", "GET", "/measurements/7", 404, "application/problem+json", problem, false},
		{"missing required field", "GET", "/measurements/7", 200, "application/json", `{"id":7}`, true},
		{"undocumented field", "GET", "/measurements/7", 200, "application/json",
			strings.Replace(measurement, `"id":7`, `"id":7,"secret":"x"`, 1), true},
		{"wrong type", "GET", "/measurements/7", 200, "application/json", strings.Replace(measurement, `1.5`, `"warm"`, 1), true},
		{"undocumented route answering 200", "GET", "/nowhere", 200, "application/json", `{}`, true},
		{"unknown route answered as a problem", "GET", "/nowhere", 404, "application/problem+json", problem, false},
		{"problem as plain JSON", "GET", "/measurements/7", 404, "application/json", problem, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", tt.contentType)
			rec.WriteHeader(tt.status)
			_, _ = rec.WriteString(tt.body)
			tb := &recorder{TB: t}
			openapitest.Check(tb, req, rec.Result())
			assert.Equal(t, tt.wantFail, len(tb.failures) > 0, "Check failures = %v", tb.failures)
		})
	}
}

func TestCheckKeepsTheBodyReadable(t *testing.T) {
	req := httptest.NewRequest("GET", "/openapi.json", nil)
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/json")
	_, _ = rec.WriteString(`{"openapi":"3.1.0"}`)
	resp := rec.Result()
	openapitest.Check(t, req, resp)
	b, err := io.ReadAll(resp.Body)
	assert.NoError(t, err)
	assert.Equal(t, `{"openapi":"3.1.0"}`, string(b))
}
