package readings_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/readings"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

type page struct {
	Items      []tempwatch.Reading `json:"items"`
	HasMore    bool                `json:"has_more"`
	NextCursor string              `json:"next_cursor"`
}

func TestReadingsRoutes(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	rdb, prefix := redistest.MustClient(t)
	store := postgres.NewReadingStore(db)
	c := redis.NewCache(redis.New(rdb, redis.Options{Prefix: prefix}), redis.CacheOptions{Store: store})
	h := readings.NewHandler(store, c, slog.New(slog.DiscardHandler))
	client := pgtest.MustClient(t, db, "acme", "UTC")
	sensor := pgtest.MustSensor(t, db, client, "d1", "k1")
	viewer := tempwatch.Principal{UserID: "v", ClientID: client, Role: tempwatch.RoleViewer}
	get := func(path string, q url.Values, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path+"?"+q.Encode(), nil)
		r = r.WithContext(tempwatch.WithPrincipal(r.Context(), viewer))
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	base := "/sensors/" + sensor + "/readings"

	w := get(base+"/latest", nil)
	assert.Equal(t, http.StatusNotFound, w.Code, "no readings yet: %s", w.Body)

	// 25 readings, one batch each, measured a minute apart, then a late
	// reading measured before all of them: created last, never the latest.
	t0 := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	ws := postgres.NewReadingStore(db)
	for i := range 25 {
		_, err := ws.WriteReadings(context.Background(), []tempwatch.Reading{{SensorID: sensor, Value: float64(i), MeasuredAt: t0.Add(time.Duration(i) * time.Minute)}})
		require.NoError(t, err)
	}
	_, err := ws.WriteReadings(context.Background(), []tempwatch.Reading{{SensorID: sensor, Value: -1, MeasuredAt: t0.Add(-time.Hour)}})
	require.NoError(t, err)

	t.Run("pages newest created first", func(t *testing.T) {
		var all []tempwatch.Reading
		q := url.Values{"limit": {"7"}}
		for {
			w := get(base, q)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			var p page
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
			all = append(all, p.Items...)
			if !p.HasMore {
				break
			}
			q.Set("cursor", p.NextCursor)
		}
		require.Len(t, all, 26)
		assert.Equal(t, -1.0, all[0].Value, "the late reading was created last")
		for i := 1; i < len(all); i++ {
			assert.Equal(t, float64(25-i), all[i].Value)
		}
	})
	t.Run("from and to on measured_at", func(t *testing.T) {
		w := get(base, url.Values{"from": {t0.Add(5 * time.Minute).Format(time.RFC3339)}, "to": {t0.Add(8 * time.Minute).Format(time.RFC3339)}})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var p page
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
		var got []float64
		for _, r := range p.Items {
			got = append(got, r.Value)
		}
		assert.Equal(t, []float64{7, 6, 5}, got)
	})
	t.Run("latest is the newest measured", func(t *testing.T) {
		for _, req := range []struct {
			path string
			q    url.Values
		}{{base + "/latest", nil}, {base, url.Values{"latest": {"true"}}}} {
			w := get(req.path, req.q)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			assert.Contains(t, w.Body.String(), `"value":24`)
			assert.NotContains(t, w.Body.String(), `"value":-1`)
		}
	})
	t.Run("etag and 304", func(t *testing.T) {
		w := get(base+"/latest", nil)
		etag := w.Header().Get("ETag")
		require.NotEmpty(t, etag)
		assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
		w = get(base+"/latest", nil, "If-None-Match", etag)
		assert.Equal(t, http.StatusNotModified, w.Code)
		assert.Empty(t, w.Body.String())

		res, err := ws.WriteReadings(context.Background(), []tempwatch.Reading{{SensorID: sensor, Value: 99, MeasuredAt: t0.Add(time.Hour)}})
		require.NoError(t, err)
		c.OfferLatest(context.Background(), tempwatch.Reading{ID: res[0].ReadingID, SensorID: sensor, Value: 99,
			MeasuredAt: t0.Add(time.Hour), CreatedAt: res[0].CreatedAt})
		w = get(base+"/latest", nil, "If-None-Match", etag)
		assert.Equal(t, http.StatusOK, w.Code, "a new reading changes the tag")
		assert.Contains(t, w.Body.String(), `"value":99`)
	})
	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name  string
			q     url.Values
			field string
		}{
			{"bad from", url.Values{"from": {"yesterday"}}, "from"},
			{"reversed", url.Values{"from": {"2026-01-02T00:00:00Z"}, "to": {"2026-01-01T00:00:00Z"}}, "to"},
			{"bad latest", url.Values{"latest": {"maybe"}}, "latest"},
			{"limit too big", url.Values{"limit": {"501"}}, "limit"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				w := get(base, tt.q)
				require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
				var p struct{ Errors map[string]string }
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
				assert.Contains(t, p.Errors, tt.field)
			})
		}
	})
	t.Run("unknown sensor", func(t *testing.T) {
		for _, id := range []string{"nope", "00000000-0000-0000-0000-000000000000"} {
			assert.Equal(t, http.StatusNotFound, get("/sensors/"+id+"/readings", nil).Code)
		}
	})
}
