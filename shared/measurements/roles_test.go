package measurements_test

// Fast tier: the /measurements rules over fake stores, no server.

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/measurements"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// invalidations records the sensors whose cached readings were dropped.
type invalidations struct{ sensors []string }

func (i *invalidations) InvalidateSensor(_ context.Context, ids ...string) {
	i.sensors = append(i.sensors, ids...)
}

// measurementWorld is sensor Sensor of client A with one measurement, ID.
type measurementWorld struct {
	Sensor string
	ID     int64
}

func newMeasurementWorld() measurementWorld { return measurementWorld{Sensor: auth.NewID(), ID: 42} }

// fakeSensors finds the world's sensor, of client A.
func (mw measurementWorld) fakeSensors(tn apitest.Tenants) *mock.SensorService {
	return &mock.SensorService{FindSensorByIDFn: func(_ context.Context, id string) (*tempwatch.Sensor, error) {
		if id != mw.Sensor {
			return nil, tempwatch.NotFound("Sensor")
		}
		return &tempwatch.Sensor{ID: id, ClientID: tn.ClientA, MinValue: -100, MaxValue: 200}, nil
	}}
}

// fakeMeasurements holds the world's measurement, recording writes in w.
func (mw measurementWorld) fakeMeasurements(tn apitest.Tenants, w *apitest.Writes) *mock.ReadingService {
	now := time.Now().UTC().Truncate(time.Second)
	m := &tempwatch.Reading{ID: mw.ID, SensorID: mw.Sensor, ClientID: tn.ClientA, Value: 21.5, MeasuredAt: now.Add(-time.Hour), CreatedAt: now}
	find := func(id string) (*tempwatch.Reading, error) {
		if id != strconv.FormatInt(m.ID, 10) {
			return nil, tempwatch.NotFound("Measurement")
		}
		return m, nil
	}
	changed := func(op, id string) (*tempwatch.Reading, error) {
		got, err := find(id)
		return got, w.Done(op, err)
	}
	return &mock.ReadingService{
		CreateReadingFn: func(_ context.Context, m *tempwatch.Reading) error {
			w.Add("CreateReading")
			m.ID, m.ClientID, m.CreatedAt = 43, tn.ClientA, now
			return nil
		},
		FindReadingByIDFn: func(_ context.Context, id string) (*tempwatch.Reading, error) { return find(id) },
		FindReadingsFn: func(_ context.Context, f tempwatch.ReadingFilter) ([]tempwatch.Reading, error) {
			if f.SensorID != m.SensorID {
				return nil, nil
			}
			return []tempwatch.Reading{*m}, nil
		},
		UpdateReadingFn: func(_ context.Context, id string, _ tempwatch.ReadingUpdate) (*tempwatch.Reading, error) {
			return changed("UpdateReading", id)
		},
		DeleteReadingFn: func(_ context.Context, id string) (*tempwatch.Reading, error) {
			return changed("DeleteReading", id)
		},
	}
}

func TestMeasurementRolesFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	mw := newMeasurementWorld()
	m := "/measurements/" + strconv.FormatInt(mw.ID, 10)
	apitest.CheckRoles(t, "MeasurementsFunction", tn, func(log *slog.Logger, w *apitest.Writes) http.Handler {
		return measurements.NewHandler(mw.fakeMeasurements(tn, w), mw.fakeSensors(tn), &invalidations{}, log)
	}, []apitest.RoleCase{
		{Route: "GET /measurements", Path: "/measurements?sensor_id=" + mw.Sensor, Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "GET /measurements", Name: "GET /measurements of no sensor", Path: "/measurements", Want: [5]int{400, 400, 400, 400, 401}},
		{Route: "POST /measurements", Body: `{"sensor_id":"` + mw.Sensor + `","value":4.5}`, Want: [5]int{201, 201, 403, 404, 401}},
		{Route: "POST /measurements", Name: "POST /measurements of an unknown sensor", Body: `{"sensor_id":"` + auth.NewID() + `","value":4.5}`,
			Want: [5]int{404, 404, 404, 404, 401}},
		{Route: "GET /measurements/{id}", Path: m, Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "PATCH /measurements/{id}", Path: m, Body: `{"value":3}`, Want: [5]int{200, 200, 403, 404, 401}},
		{Route: "DELETE /measurements/{id}", Path: m, Want: [5]int{204, 204, 403, 404, 401}},
	})
}

// TestMeasurementWritesInvalidateFast: every accepted write drops the
// sensor's cached readings, once; a refused one drops nothing.
func TestMeasurementWritesInvalidateFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	mw := newMeasurementWorld()
	m := "/measurements/" + strconv.FormatInt(mw.ID, 10)
	tests := []struct {
		name, method, path, body string
		as                       tempwatch.Principal
		want                     []string
	}{
		{"create", "POST", "/measurements", `{"sensor_id":"` + mw.Sensor + `","value":4.5}`, tn.AdminA, []string{mw.Sensor}},
		{"update", "PATCH", m, `{"value":3}`, tn.AdminA, []string{mw.Sensor}},
		{"delete", "DELETE", m, "", tn.AdminA, []string{mw.Sensor}},
		{"refused update", "PATCH", m, `{"value":3}`, tn.ViewerA, nil},
		{"refused delete", "DELETE", m, "", tn.AdminB, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inv := &invalidations{}
			h := measurements.NewHandler(mw.fakeMeasurements(tn, &apitest.Writes{}), mw.fakeSensors(tn), inv, apitest.Logger(t))
			resp := apitest.Do(t, h, &tt.as, tt.method, tt.path, tt.body)
			require.Less(t, resp.Status, 500, string(resp.Body))
			assert.Equal(t, tt.want, inv.sensors)
		})
	}
}

func TestMeasurementStoreFailuresFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	mw := newMeasurementWorld()
	apitest.CheckStoreFailures(t, tn.AdminA, "PATCH", "/measurements/42", `{"value":3}`, func(log *slog.Logger, err error) http.Handler {
		svc := mw.fakeMeasurements(tn, &apitest.Writes{})
		svc.UpdateReadingFn = func(context.Context, string, tempwatch.ReadingUpdate) (*tempwatch.Reading, error) {
			return nil, err
		}
		return measurements.NewHandler(svc, mw.fakeSensors(tn), &invalidations{}, log)
	})
}
