package export_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestYearZeroIsNotAServerError (review h-revb): from=0000-01-01 is a date
// Go parses (year 0) and PostgreSQL refuses ("date/time field value out of
// range"): the export answers 500 instead of 400 on from.
func TestYearZeroIsNotAServerError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.client(t, "acme", "UTC")
	s := e.sensor(t, c, "s-1", "One")
	for _, q := range []struct{ data, from, to string }{
		{"daily", "0000-01-01", "0000-01-05"},
		{"readings", "0000-01-01", "0000-01-05"},
	} {
		for _, path := range []string{"/sensors/" + s + "/export.csv", "/clients/" + c + "/export.csv"} {
			resp := e.get(t, "admin", path, query("data", q.data, "from", q.from, "to", q.to))
			body, _ := io.ReadAll(resp.Body)
			assert.Less(t, resp.StatusCode, http.StatusInternalServerError, "%s %s: %s", path, q.data, body)
		}
	}
}
