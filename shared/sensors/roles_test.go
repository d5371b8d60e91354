package sensors_test

// Fast tier: the /sensors rules over a fake SensorService and caches, no server.

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/sensors"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// noCaches is a sensors.Caches with nothing cached and nothing to drop.
type noCaches struct{}

func (noCaches) LatestReadings(context.Context, []string) (map[string]tempwatch.Reading, error) {
	return map[string]tempwatch.Reading{}, nil
}
func (noCaches) ForgetDevices(context.Context, ...string)    {}
func (noCaches) InvalidateSensor(context.Context, ...string) {}

// fakeSensors holds sensor a of client A and sensor b of client B,
// recording its writes in w.
func fakeSensors(tn apitest.Tenants, a, b string, w *apitest.Writes) *mock.SensorService {
	now := time.Now().UTC().Truncate(time.Second)
	byID := map[string]*tempwatch.Sensor{}
	for id, client := range map[string]string{a: tn.ClientA, b: tn.ClientB} {
		byID[id] = &tempwatch.Sensor{ID: id, ClientID: client, DeviceID: "dev-" + id[:8], Name: "Fridge", Unit: "C",
			MinValue: -100, MaxValue: 200, SilenceAfterSeconds: tempwatch.DefaultSilenceAfterSeconds,
			Status: tempwatch.SensorUnknown, CreatedAt: now, UpdatedAt: now}
	}
	find := func(id string) (*tempwatch.Sensor, error) {
		if s, ok := byID[id]; ok {
			return s, nil
		}
		return nil, tempwatch.NotFound("Sensor")
	}
	changed := func(op, id string) (*tempwatch.Sensor, error) {
		s, err := find(id)
		return s, w.Done(op, err)
	}
	ref := func(s *tempwatch.Sensor) tempwatch.DeviceRef {
		return tempwatch.DeviceRef{ClientSlug: "slug-" + s.ClientID[:8], DeviceID: s.DeviceID}
	}
	return &mock.SensorService{
		CreateSensorFn: func(_ context.Context, s *tempwatch.Sensor, _ []byte) (tempwatch.DeviceRef, error) {
			w.Add("CreateSensor")
			s.ID, s.Status, s.CreatedAt, s.UpdatedAt = auth.NewID(), tempwatch.SensorUnknown, now, now
			return ref(s), nil
		},
		FindSensorByIDFn: func(_ context.Context, id string) (*tempwatch.Sensor, error) { return find(id) },
		FindSensorsFn: func(_ context.Context, f tempwatch.SensorFilter) ([]*tempwatch.Sensor, error) {
			return slices.DeleteFunc(slices.Collect(maps.Values(byID)), func(s *tempwatch.Sensor) bool {
				return f.ClientID != "" && f.ClientID != s.ClientID
			}), nil
		},
		UpdateSensorFn: func(_ context.Context, id string, _ tempwatch.SensorUpdate) (*tempwatch.Sensor, error) {
			return changed("UpdateSensor", id)
		},
		DeleteSensorFn: func(_ context.Context, id string) error {
			_, err := changed("DeleteSensor", id)
			return err
		},
		SetDeviceKeyHashFn: func(_ context.Context, id string, _ []byte) (*tempwatch.Sensor, tempwatch.DeviceRef, error) {
			s, err := changed("SetDeviceKeyHash", id)
			if err != nil {
				return nil, tempwatch.DeviceRef{}, err
			}
			return s, ref(s), nil
		},
	}
}

func TestSensorRolesFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	a, b := auth.NewID(), auth.NewID()
	sa := "/sensors/" + a
	apitest.CheckRoles(t, "SensorsFunction", tn, func(log *slog.Logger, w *apitest.Writes) http.Handler {
		return sensors.NewHandler(fakeSensors(tn, a, b, w), noCaches{}, log)
	}, []apitest.RoleCase{
		{Route: "GET /sensors", Want: [5]int{200, 200, 200, 200, 401}},
		{Route: "GET /sensors", Name: "GET /sensors of client B", Path: "/sensors?client_id=" + tn.ClientB,
			Want: [5]int{200, 404, 404, 200, 401}},
		{Route: "GET /sensors", Name: "GET /sensors of a bad client id", Path: "/sensors?client_id=x", Want: [5]int{400, 400, 400, 400, 401}},
		{Route: "POST /sensors", Body: `{"client_id":"` + tn.ClientA + `","device_id":"d-1","name":"New"}`,
			Want: [5]int{201, 201, 403, 404, 401}},
		{Route: "GET /sensors/{id}", Path: sa, Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "GET /sensors/{id}", Name: "GET /sensors/{id} of no sensor", Path: "/sensors/" + auth.NewID(),
			Want: [5]int{404, 404, 404, 404, 401}},
		{Route: "PATCH /sensors/{id}", Path: sa, Body: `{"name":"Renamed"}`, Want: [5]int{200, 200, 403, 404, 401}},
		{Route: "DELETE /sensors/{id}", Path: sa, Want: [5]int{204, 204, 403, 404, 401}},
		{Route: "POST /sensors/{id}/rotate-key", Path: sa + "/rotate-key", Want: [5]int{200, 200, 403, 404, 401}},
	})
}

// TestSensorListScopeFast: the store is asked for the client each caller
// may list, whichever it named.
func TestSensorListScopeFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	tests := []struct {
		name     string
		as       int
		clientID string // asked for
		want     string // the store's filter
	}{
		{"admin asking for every client", apitest.AsAdmin, "", ""},
		{"admin asking for client B", apitest.AsAdmin, tn.ClientB, tn.ClientB},
		{"client_admin of A asking for every client", apitest.AsAdminA, "", tn.ClientA},
		{"client_admin of A asking for client A", apitest.AsAdminA, tn.ClientA, tn.ClientA},
		{"viewer of A asking for every client", apitest.AsViewerA, "", tn.ClientA},
		{"client_admin of B asking for every client", apitest.AsAdminB, "", tn.ClientB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc := fakeSensors(tn, auth.NewID(), auth.NewID(), &apitest.Writes{})
			var asked []tempwatch.SensorFilter
			find := svc.FindSensorsFn
			svc.FindSensorsFn = func(ctx context.Context, f tempwatch.SensorFilter) ([]*tempwatch.Sensor, error) {
				asked = append(asked, f)
				return find(ctx, f)
			}
			p, _ := tn.Principal(tt.as)
			resp := apitest.Do(t, sensors.NewHandler(svc, noCaches{}, apitest.Logger(t)), &p, "GET", "/sensors?name=fr&client_id="+tt.clientID, "")
			require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
			require.Len(t, asked, 1)
			assert.Equal(t, tt.want, asked[0].ClientID)
			assert.Equal(t, "fr", asked[0].Name)
		})
	}
}

func TestSensorStoreFailuresFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	a := auth.NewID()
	newAPI := func(failing func(svc *mock.SensorService, err error)) func(*slog.Logger, error) http.Handler {
		return func(log *slog.Logger, err error) http.Handler {
			svc := fakeSensors(tn, a, auth.NewID(), &apitest.Writes{})
			failing(svc, err)
			return sensors.NewHandler(svc, noCaches{}, log)
		}
	}
	t.Run("find", func(t *testing.T) {
		apitest.CheckStoreFailures(t, tn.ViewerA, "GET", "/sensors/"+a, "", newAPI(func(svc *mock.SensorService, err error) {
			svc.FindSensorByIDFn = func(context.Context, string) (*tempwatch.Sensor, error) { return nil, err }
		}))
	})
	t.Run("rotate key", func(t *testing.T) {
		apitest.CheckStoreFailures(t, tn.AdminA, "POST", "/sensors/"+a+"/rotate-key", "", newAPI(func(svc *mock.SensorService, err error) {
			svc.SetDeviceKeyHashFn = func(context.Context, string, []byte) (*tempwatch.Sensor, tempwatch.DeviceRef, error) {
				return nil, tempwatch.DeviceRef{}, err
			}
		}))
	})
}
