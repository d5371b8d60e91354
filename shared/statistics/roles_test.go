package statistics_test

// Fast tier: the daily-averages rules over a fake ReadingQuery and a cache
// without Redis (every aggregate loaded from the query), no server.

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
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/statistics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// fakeAverages knows client A (in Europe/Berlin) with one sensor, which has
// one day of readings, and client B (in UTC) with none.
func fakeAverages(tn apitest.Tenants, sensor string) *mock.ReadingQuery {
	day := time.Now().UTC().Add(-24 * time.Hour).Truncate(24 * time.Hour)
	return &mock.ReadingQuery{
		FindSensorOwnerFn: func(_ context.Context, id string) (tempwatch.SensorOwner, error) {
			if id != sensor {
				return tempwatch.SensorOwner{}, tempwatch.NotFound("Sensor")
			}
			return tempwatch.SensorOwner{SensorID: id, ClientID: tn.ClientA, Timezone: "Europe/Berlin"}, nil
		},
		FindClientTimezoneFn: func(_ context.Context, id string) (string, error) {
			switch id {
			case tn.ClientA:
				return "Europe/Berlin", nil
			case tn.ClientB:
				return "UTC", nil
			}
			return "", tempwatch.NotFound("Client")
		},
		SensorIDsOfClientFn: func(_ context.Context, id string) ([]string, error) {
			if id != tn.ClientA {
				return nil, nil
			}
			return []string{sensor}, nil
		},
		DailyAveragesFn: func(_ context.Context, f tempwatch.DailyAverageFilter) ([]tempwatch.DailyAverage, error) {
			if f.SensorID != sensor && f.ClientID != tn.ClientA {
				return nil, nil
			}
			return []tempwatch.DailyAverage{{SensorID: sensor, Day: day.Format("2006-01-02"), Avg: 4, Min: 3, Max: 5, Count: 96,
				FirstAt: day, LastAt: day.Add(23 * time.Hour)}}, nil
		},
	}
}

func newStatisticsAPI(q *mock.ReadingQuery, log *slog.Logger) http.Handler {
	return statistics.NewHandler(q, redis.NewCache(redis.New(nil, redis.Options{}), redis.CacheOptions{Store: q}), log)
}

func TestStatisticsRolesFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	sensor := auth.NewID()
	apitest.CheckRoles(t, "StatisticsFunction", tn, func(log *slog.Logger, _ *apitest.Writes) http.Handler {
		return newStatisticsAPI(fakeAverages(tn, sensor), log)
	}, []apitest.RoleCase{
		{Route: "GET /sensors/{id}/daily-averages", Path: "/sensors/" + sensor + "/daily-averages", Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "GET /sensors/{id}/daily-averages", Name: "GET /sensors/{id}/daily-averages of no sensor",
			Path: "/sensors/" + auth.NewID() + "/daily-averages", Want: [5]int{404, 404, 404, 404, 401}},
		{Route: "GET /clients/{id}/daily-averages", Path: "/clients/" + tn.ClientA + "/daily-averages", Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "GET /clients/{id}/daily-averages", Name: "GET /clients/{id}/daily-averages of client B",
			Path: "/clients/" + tn.ClientB + "/daily-averages", Want: [5]int{200, 404, 404, 200, 401}},
	})
}

// TestDailyAverageFilterFast: the query gets the client's zone unless the
// caller names one, and another tenant's client is never queried.
func TestDailyAverageFilterFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	sensor := auth.NewID()
	q := fakeAverages(tn, sensor)
	var asked []tempwatch.DailyAverageFilter
	load := q.DailyAveragesFn
	q.DailyAveragesFn = func(ctx context.Context, f tempwatch.DailyAverageFilter) ([]tempwatch.DailyAverage, error) {
		asked = append(asked, f)
		return load(ctx, f)
	}
	h := newStatisticsAPI(q, apitest.Logger(t))
	resp := apitest.Do(t, h, &tn.ViewerA, "GET", "/clients/"+tn.ClientA+"/daily-averages?from=2026-01-01&to=2026-01-31", "")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	resp = apitest.Do(t, h, &tn.ViewerA, "GET", "/sensors/"+sensor+"/daily-averages?from=2026-01-01&to=2026-01-31&tz=Asia/Kolkata", "")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	require.Len(t, asked, 2)
	assert.Equal(t, tn.ClientA, asked[0].ClientID)
	assert.Equal(t, "Europe/Berlin", asked[0].Timezone)
	assert.Equal(t, sensor, asked[1].SensorID)
	assert.Equal(t, "Asia/Kolkata", asked[1].Timezone)
	assert.Equal(t, "Europe/Berlin", asked[1].ClientTimezone, "the client's own zone, whose days are kept")
	assert.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), asked[1].From)
	assert.Equal(t, time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC), asked[1].To)

	resp = apitest.Do(t, h, &tn.AdminB, "GET", "/clients/"+tn.ClientA+"/daily-averages", "")
	assert.Equal(t, http.StatusNotFound, resp.Status)
	assert.Len(t, asked, 2, "another tenant's averages are never queried")
}

func TestStatisticsStoreFailuresFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	sensor := auth.NewID()
	apitest.CheckStoreFailures(t, tn.ViewerA, "GET", "/clients/"+tn.ClientA+"/daily-averages", "", func(log *slog.Logger, err error) http.Handler {
		q := fakeAverages(tn, sensor)
		q.DailyAveragesFn = func(context.Context, tempwatch.DailyAverageFilter) ([]tempwatch.DailyAverage, error) { return nil, err }
		return newStatisticsAPI(q, log)
	})
}
