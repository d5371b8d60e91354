package ingest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/mongo"
)

func postReadings(t *testing.T, h http.Handler, key, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/ingest/readings", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if key != "" {
		r.Header.Set(ingest.DeviceKeyHeader, key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHTTPIngest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := ingest.NewHandler(e.service(nil, nil, nil), quietLog())
	at := func(d time.Duration) string { return ts(e.now.Add(-d)) }

	t.Run("auth", func(t *testing.T) {
		tests := []struct{ name, key string }{
			{"missing key", ""},
			{"unknown key", "not-a-key"},
			{"user token is not a device key", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				w := postReadings(t, h, tt.key, `{"value":1}`)
				assert.Equal(t, http.StatusUnauthorized, w.Code)
				assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
			})
		}
		assert.Equal(t, 0, e.count(t, `SELECT count(*) FROM readings`))
	})

	t.Run("one reading", func(t *testing.T) {
		w := postReadings(t, h, e.acme1Key, fmt.Sprintf(`{"value":21.5,"ts":%q}`, at(time.Hour)))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var resp ingest.HTTPResponse
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
		assert.Equal(t, 1, resp.Accepted)
		require.Len(t, resp.Items, 1)
		assert.Equal(t, ingest.StatusStored, resp.Items[0].Status)
		assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM readings WHERE id = $1 AND sensor_id = $2 AND value = 21.5`, resp.Items[0].ReadingID, e.acme1))

		// The same reading again is a duplicate, not a second row, and
		// names the stored row.
		w = postReadings(t, h, e.acme1Key, fmt.Sprintf(`{"value":21.5,"ts":%q}`, at(time.Hour)))
		require.Equal(t, http.StatusOK, w.Code)
		var dup ingest.HTTPResponse
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &dup))
		require.Len(t, dup.Items, 1)
		assert.Equal(t, ingest.StatusDuplicate, dup.Items[0].Status)
		assert.Equal(t, resp.Items[0].ReadingID, dup.Items[0].ReadingID, "duplicate's reading id")
		assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM readings`))
	})

	t.Run("array with one bad item", func(t *testing.T) {
		body := fmt.Sprintf(`[{"value":1,"ts":%q},{"value":"warm"},{"temperature":3,"ts":%q},{"value":200,"ts":%q}]`,
			at(50*time.Minute), at(40*time.Minute), at(30*time.Minute))
		w := postReadings(t, h, e.acme1Key, body)
		require.Equal(t, http.StatusMultiStatus, w.Code, w.Body.String())
		var resp ingest.HTTPResponse
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
		assert.Equal(t, 2, resp.Accepted)
		assert.Equal(t, 2, resp.Rejected)
		statuses := make([]string, len(resp.Items))
		for i, it := range resp.Items {
			assert.Equal(t, i, it.Index)
			statuses[i] = it.Status
		}
		assert.Equal(t, []string{"stored", "rejected", "stored", "rejected"}, statuses)
		assert.Equal(t, "value must be a number", resp.Items[1].Reason)
		assert.Contains(t, resp.Items[3].Reason, "outside the sensor's range")
		assert.Equal(t, 3, e.count(t, `SELECT count(*) FROM readings`))
		assert.Equal(t, 0, e.rollupMismatches(t))
		e.assertPayloads(t, 3)
		assert.Equal(t, 2, e.mongoCount(t, mongo.DeadLettersCollection, nil))
	})

	t.Run("the key decides the sensor, not the body", func(t *testing.T) {
		w := postReadings(t, h, e.acme1Key, fmt.Sprintf(`{"value":7,"ts":%q,"device_id":"dev-1","sensor_id":%q,"client":"globex"}`, at(20*time.Minute), e.globex1))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM readings WHERE value = 7 AND sensor_id = $1`, e.acme1))
		assert.Equal(t, 0, e.count(t, `SELECT count(*) FROM readings WHERE sensor_id = $1`, e.globex1))
	})

	t.Run("bad bodies", func(t *testing.T) {
		many := "[" + strings.TrimSuffix(strings.Repeat(`{"value":1},`, ingest.MaxHTTPItems+1), ",") + "]"
		tests := []struct {
			name, body string
			status     int
		}{
			{"empty", ``, http.StatusBadRequest},
			{"empty array", `[]`, http.StatusBadRequest},
			{"broken array", `[{"value":1}`, http.StatusBadRequest},
			{"scalar", `42`, http.StatusBadRequest},
			{"too many items", many, http.StatusRequestEntityTooLarge},
			{"too large", `{"value":1,"x":"` + strings.Repeat("a", 1<<20) + `"}`, http.StatusRequestEntityTooLarge},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				w := postReadings(t, h, e.acme1Key, tt.body)
				assert.Equal(t, tt.status, w.Code, w.Body.String())
			})
		}
		assert.Equal(t, 4, e.count(t, `SELECT count(*) FROM readings`))
	})
}

func TestHTTPIngestPostgresDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A pool that cannot reach its server: the key lookup fails, and the
	// device is told to come back (503), not that its key is wrong.
	pool, proxy := e.proxiedPool(t)
	proxy.Cut()
	h := ingest.NewHandler(e.service(pool, nil, nil), quietLog())
	w := postReadings(t, h, e.acme1Key, `{"value":1}`)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	assert.NotEmpty(t, w.Header().Get("Retry-After"))
}
