package readings_test

// Fast tier: the readings routes' rules over a fake ReadingQuery and a read
// cache without Redis (every read degraded to the query), no server.

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/readings"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// fakeReadings knows sensor of client A, with one reading an hour ago.
func fakeReadings(tn apitest.Tenants, sensor string) *mock.ReadingQuery {
	now := time.Now().UTC().Truncate(time.Second)
	rd := tempwatch.Reading{ID: 7, SensorID: sensor, Value: 21.5, MeasuredAt: now.Add(-time.Hour), CreatedAt: now}
	return &mock.ReadingQuery{
		FindSensorOwnerFn: func(_ context.Context, id string) (tempwatch.SensorOwner, error) {
			if id != sensor {
				return tempwatch.SensorOwner{}, tempwatch.NotFound("Sensor")
			}
			return tempwatch.SensorOwner{SensorID: id, ClientID: tn.ClientA, Timezone: "Europe/Berlin"}, nil
		},
		FindReadingsFn: func(_ context.Context, f tempwatch.ReadingFilter) ([]tempwatch.Reading, error) {
			return []tempwatch.Reading{rd}, nil
		},
		LatestReadingsFn: func(_ context.Context, ids []string) (map[string]tempwatch.Reading, error) {
			return map[string]tempwatch.Reading{sensor: rd}, nil
		},
	}
}

func newReadingsAPI(q *mock.ReadingQuery, log *slog.Logger) http.Handler {
	return readings.NewHandler(q, redis.NewCache(redis.New(nil, redis.Options{}), redis.CacheOptions{Store: q}), log)
}

func TestReadingRolesFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	sensor := auth.NewID()
	s := "/sensors/" + sensor
	apitest.CheckRoles(t, "ReadingsFunction", tn, func(log *slog.Logger, _ *apitest.Writes) http.Handler {
		return newReadingsAPI(fakeReadings(tn, sensor), log)
	}, []apitest.RoleCase{
		{Route: "GET /sensors/{id}/readings", Path: s + "/readings", Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "GET /sensors/{id}/readings", Name: "GET /sensors/{id}/readings?latest=true", Path: s + "/readings?latest=true",
			Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "GET /sensors/{id}/readings", Name: "GET /sensors/{id}/readings of no sensor", Path: "/sensors/" + auth.NewID() + "/readings",
			Want: [5]int{404, 404, 404, 404, 401}},
		{Route: "GET /sensors/{id}/readings/latest", Path: s + "/readings/latest", Want: [5]int{200, 200, 200, 404, 401}},
	})
}

// TestReadingFilterFast: what reaches the query is the path's sensor and the
// caller's bounds and page; another tenant's sensor reaches no query but its owner's.
func TestReadingFilterFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	sensor := auth.NewID()
	q := fakeReadings(tn, sensor)
	var asked []tempwatch.ReadingFilter
	find := q.FindReadingsFn
	q.FindReadingsFn = func(ctx context.Context, f tempwatch.ReadingFilter) ([]tempwatch.Reading, error) {
		asked = append(asked, f)
		return find(ctx, f)
	}
	h := newReadingsAPI(q, apitest.Logger(t))
	path := "/sensors/" + sensor + "/readings?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&limit=5"
	resp := apitest.Do(t, h, &tn.ViewerA, "GET", path, "")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	require.Len(t, asked, 1)
	assert.Equal(t, sensor, asked[0].SensorID)
	assert.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), asked[0].From)
	assert.Equal(t, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), asked[0].To)
	assert.Equal(t, 5, asked[0].Page.Limit)

	resp = apitest.Do(t, h, &tn.AdminB, "GET", path, "")
	assert.Equal(t, http.StatusNotFound, resp.Status)
	assert.Len(t, asked, 1, "another tenant's readings are never queried")
}

func TestReadingStoreFailuresFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	sensor := auth.NewID()
	t.Run("owner", func(t *testing.T) {
		apitest.CheckStoreFailures(t, tn.ViewerA, "GET", "/sensors/"+sensor+"/readings", "", func(log *slog.Logger, err error) http.Handler {
			q := fakeReadings(tn, sensor)
			q.FindSensorOwnerFn = func(context.Context, string) (tempwatch.SensorOwner, error) { return tempwatch.SensorOwner{}, err }
			return newReadingsAPI(q, log)
		})
	})
	t.Run("latest", func(t *testing.T) {
		apitest.CheckStoreFailures(t, tn.ViewerA, "GET", "/sensors/"+sensor+"/readings/latest", "", func(log *slog.Logger, err error) http.Handler {
			q := fakeReadings(tn, sensor)
			q.LatestReadingsFn = func(context.Context, []string) (map[string]tempwatch.Reading, error) { return nil, err }
			return newReadingsAPI(q, log)
		})
	})
}
