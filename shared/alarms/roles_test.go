package alarms_test

// Fast tier: the /alarms rules over a fake AlarmService, no server.

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/alarms"
	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// fakeAlarms holds open alarm a of client A and b of client B, recording
// its writes in w. Acknowledging one twice is a conflict, as the store's.
func fakeAlarms(tn apitest.Tenants, a, b string, w *apitest.Writes) *mock.AlarmService {
	now := time.Now().UTC().Truncate(time.Second)
	byID := map[string]*tempwatch.Alarm{}
	for id, client := range map[string]string{a: tn.ClientA, b: tn.ClientB} {
		peak := 9.5
		byID[id] = &tempwatch.Alarm{ID: id, SensorID: auth.NewID(), ClientID: client, Kind: tempwatch.AlarmHigh,
			State: tempwatch.AlarmOpen, StartedAt: now.Add(-time.Hour), OpenedAt: now.Add(-time.Hour), LastAt: now,
			Peak: &peak, DurationSeconds: 3600, CreatedAt: now, UpdatedAt: now}
	}
	find := func(id string) (*tempwatch.Alarm, error) {
		if a, ok := byID[id]; ok {
			return a, nil
		}
		return nil, tempwatch.NotFound("Alarm")
	}
	return &mock.AlarmService{
		FindAlarmsFn: func(_ context.Context, f tempwatch.AlarmFilter) ([]*tempwatch.Alarm, error) {
			var out []*tempwatch.Alarm
			for _, a := range byID {
				if f.ClientID == "" || f.ClientID == a.ClientID {
					out = append(out, a)
				}
			}
			return out, nil
		},
		FindAlarmByIDFn: func(_ context.Context, id string) (*tempwatch.Alarm, error) { return find(id) },
		AcknowledgeAlarmFn: func(_ context.Context, id, userID, comment string) (*tempwatch.Alarm, error) {
			a, err := find(id)
			if err != nil {
				return nil, err
			}
			if a.Acknowledgement != nil {
				return nil, tempwatch.Errorf(tempwatch.ECONFLICT, "The alarm is already acknowledged.")
			}
			acked := *a
			acked.Acknowledgement = &tempwatch.Acknowledgement{UserID: userID, At: now, Comment: comment}
			byID[id] = &acked
			w.Add("AcknowledgeAlarm")
			return &acked, nil
		},
	}
}

func TestAlarmRolesFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	a, b := auth.NewID(), auth.NewID()
	apitest.CheckRoles(t, "AlarmsFunction", tn, func(log *slog.Logger, w *apitest.Writes) http.Handler {
		return alarms.NewHandler(fakeAlarms(tn, a, b, w), log)
	}, []apitest.RoleCase{
		{Route: "GET /alarms", Want: [5]int{200, 200, 200, 200, 401}},
		{Route: "GET /alarms", Name: "GET /alarms of client B", Path: "/alarms?client_id=" + tn.ClientB,
			Want: [5]int{200, 200, 200, 200, 401}},
		{Route: "GET /alarms", Name: "GET /alarms with a bad filter", Path: "/alarms?kind=hot", Want: [5]int{400, 400, 400, 400, 401}},
		{Route: "GET /alarms/{id}", Path: "/alarms/" + a, Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "GET /alarms/{id}", Name: "GET /alarms/{id} of client B", Path: "/alarms/" + b, Want: [5]int{200, 404, 404, 200, 401}},
		{Route: "GET /alarms/{id}", Name: "GET /alarms/{id} of no alarm", Path: "/alarms/" + auth.NewID(),
			Want: [5]int{404, 404, 404, 404, 401}},
		{Route: "POST /alarms/{id}/ack", Path: "/alarms/" + a + "/ack", Body: `{"comment":"On it."}`, Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "POST /alarms/{id}/ack", Name: "POST /alarms/{id}/ack without a body", Path: "/alarms/" + a + "/ack",
			Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "POST /alarms/{id}/ack", Name: "POST /alarms/{id}/ack of client B", Path: "/alarms/" + b + "/ack",
			Want: [5]int{200, 404, 404, 200, 401}},
		{Route: "POST /alarms/{id}/ack", Name: "POST /alarms/{id}/ack with a bad comment", Path: "/alarms/" + a + "/ack",
			Body: `{"comment":"two\nlines"}`, Want: [5]int{400, 400, 400, 400, 401}},
	})
}

// TestAlarmListScopeFast: the store is asked for the client each caller may
// list, whichever it named, with the filters as given; a non-admin naming
// another client is not asked at all and gets an empty page.
func TestAlarmListScopeFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	sensor := auth.NewID()
	tests := []struct {
		name      string
		as        int
		clientID  string // asked for
		want      string // the store's filter
		wantAsked bool
	}{
		{"admin asking for every client", apitest.AsAdmin, "", "", true},
		{"admin asking for client B", apitest.AsAdmin, tn.ClientB, tn.ClientB, true},
		{"client_admin of A asking for every client", apitest.AsAdminA, "", tn.ClientA, true},
		{"viewer of A asking for client A", apitest.AsViewerA, tn.ClientA, tn.ClientA, true},
		{"viewer of A asking for client B", apitest.AsViewerA, tn.ClientB, "", false},
		{"client_admin of B asking for every client", apitest.AsAdminB, "", tn.ClientB, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc := fakeAlarms(tn, auth.NewID(), auth.NewID(), &apitest.Writes{})
			var asked []tempwatch.AlarmFilter
			find := svc.FindAlarmsFn
			svc.FindAlarmsFn = func(ctx context.Context, f tempwatch.AlarmFilter) ([]*tempwatch.Alarm, error) {
				asked = append(asked, f)
				return find(ctx, f)
			}
			p, _ := tn.Principal(tt.as)
			q := url.Values{"client_id": {tt.clientID}, "sensor_id": {sensor}, "kind": {"low"}, "state": {"cleared"},
				"from": {"2026-01-01T00:00:00Z"}, "to": {"2026-02-01T00:00:00+01:00"}, "limit": {"7"}}
			resp := apitest.Do(t, alarms.NewHandler(svc, apitest.Logger(t)), &p, "GET", "/alarms?"+q.Encode(), "")
			require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
			if !tt.wantAsked {
				assert.Empty(t, asked)
				assert.JSONEq(t, `{"items":[],"has_more":false}`, string(resp.Body))
				return
			}
			require.Len(t, asked, 1)
			f := asked[0]
			assert.Equal(t, tt.want, f.ClientID)
			assert.Equal(t, sensor, f.SensorID)
			assert.Equal(t, tempwatch.AlarmLow, f.Kind)
			assert.Equal(t, tempwatch.AlarmCleared, f.State)
			assert.True(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Equal(f.From), "From = %v", f.From)
			assert.True(t, time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC).Equal(f.To), "To = %v", f.To)
			assert.Equal(t, 7, f.Page.Limit)
		})
	}
}

// Every bad query value is a 400 naming it, and the store is never asked.
func TestAlarmListValidationFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	tests := []struct {
		query string
		want  []string
	}{
		{"client_id=nope", []string{"client_id"}},
		{"sensor_id=42", []string{"sensor_id"}},
		{"kind=hot", []string{"kind"}},
		{"state=pending", []string{"state"}},
		{"state=OPEN", []string{"state"}},
		{"from=yesterday", []string{"from"}},
		{"to=2026-13-01T00:00:00Z", []string{"to"}},
		{"from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", []string{"to"}},
		{"limit=0", []string{"limit"}},
		{"limit=501", []string{"limit"}},
		{"limit=ten", []string{"limit"}},
		{"cursor=zzz", []string{"cursor"}},
		{"kind=hot&state=hot&sensor_id=x", []string{"kind", "state", "sensor_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			svc := &mock.AlarmService{} // any call panics
			resp := apitest.Do(t, alarms.NewHandler(svc, apitest.Logger(t)), &tn.Admin, "GET", "/alarms?"+tt.query, "")
			require.Equal(t, http.StatusBadRequest, resp.Status, string(resp.Body))
			fields, _ := resp.JSON(t)["errors"].(map[string]any)
			for _, f := range tt.want {
				assert.Contains(t, fields, f, "the problem names %s: %s", f, resp.Body)
			}
		})
	}
}

// The comment is checked before anything is looked up: too long, control
// characters, not a string, unknown fields, not JSON.
func TestAlarmAckValidationFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	a := auth.NewID()
	tests := []struct {
		name, body, field string
	}{
		{"too long", `{"comment":"` + strings.Repeat("é", 1001) + `"}`, "comment"},
		{"line break", `{"comment":"a\nb"}`, "comment"},
		{"tab", `{"comment":"a\tb"}`, "comment"},
		{"escape", `{"comment":"\u001b[31mred"}`, "comment"},
		{"C1 control", `{"comment":"a\u0085b"}`, "comment"},
		{"NUL", `{"comment":"a\u0000b"}`, "comment"},
		{"not a string", `{"comment":42}`, "comment"},
		{"unknown field", `{"comment":"x","state":"cleared"}`, "state"},
		{"not JSON", `comment=x`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc := &mock.AlarmService{}
			resp := apitest.Do(t, alarms.NewHandler(svc, apitest.Logger(t)), &tn.ViewerA, "POST", "/alarms/"+a+"/ack", tt.body)
			require.Equal(t, http.StatusBadRequest, resp.Status, string(resp.Body))
			if tt.field != "" {
				assert.Contains(t, resp.JSON(t)["errors"], tt.field, string(resp.Body))
			}
		})
	}
	var w apitest.Writes
	svc := fakeAlarms(tn, a, auth.NewID(), &w)
	resp := apitest.Do(t, alarms.NewHandler(svc, apitest.Logger(t)), &tn.ViewerA, "POST", "/alarms/"+a+"/ack",
		`{"comment":"`+strings.Repeat("é", 1000)+`"}`)
	require.Equal(t, http.StatusOK, resp.Status, "1000 characters is the limit, not 1000 bytes: %s", resp.Body)
	assert.Equal(t, tn.ViewerA.UserID, resp.JSON(t)["acknowledgement"].(map[string]any)["user_id"], "the caller acknowledges")
	resp = apitest.Do(t, alarms.NewHandler(svc, apitest.Logger(t)), &tn.AdminA, "POST", "/alarms/"+a+"/ack", `{}`)
	assert.Equal(t, http.StatusConflict, resp.Status, "an acknowledged alarm is not acknowledged again: %s", resp.Body)
	assert.Equal(t, []string{"AcknowledgeAlarm"}, slices.Clone(w.Names()))
}

func TestAlarmStoreFailuresFast(t *testing.T) {
	t.Parallel()
	tn := apitest.NewTenants()
	a := auth.NewID()
	newAPI := func(failing func(svc *mock.AlarmService, err error)) func(*slog.Logger, error) http.Handler {
		return func(log *slog.Logger, err error) http.Handler {
			svc := fakeAlarms(tn, a, auth.NewID(), &apitest.Writes{})
			failing(svc, err)
			return alarms.NewHandler(svc, log)
		}
	}
	t.Run("list", func(t *testing.T) {
		apitest.CheckStoreFailures(t, tn.ViewerA, "GET", "/alarms", "", newAPI(func(svc *mock.AlarmService, err error) {
			svc.FindAlarmsFn = func(context.Context, tempwatch.AlarmFilter) ([]*tempwatch.Alarm, error) { return nil, err }
		}))
	})
	t.Run("find", func(t *testing.T) {
		apitest.CheckStoreFailures(t, tn.ViewerA, "GET", "/alarms/"+a, "", newAPI(func(svc *mock.AlarmService, err error) {
			svc.FindAlarmByIDFn = func(context.Context, string) (*tempwatch.Alarm, error) { return nil, err }
		}))
	})
	t.Run("acknowledge", func(t *testing.T) {
		apitest.CheckStoreFailures(t, tn.ViewerA, "POST", "/alarms/"+a+"/ack", `{"comment":"x"}`, newAPI(func(svc *mock.AlarmService, err error) {
			svc.AcknowledgeAlarmFn = func(context.Context, string, string, string) (*tempwatch.Alarm, error) { return nil, err }
		}))
	})
}
