package alarms_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/alarms"
	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func newHandler(t *testing.T) (*apitest.Env, http.Handler) {
	t.Helper()
	env := apitest.MustEnv(t)
	return env, alarms.NewHandler(postgres.NewAlarmStore(env.DB), apitest.Discard())
}

type alarmPage struct {
	Items      []tempwatch.Alarm `json:"items"`
	NextCursor string            `json:"next_cursor"`
	HasMore    bool              `json:"has_more"`
}

// listAll follows the cursor from query to the last page, as p.
func listAll(t *testing.T, h http.Handler, p *tempwatch.Principal, query url.Values) []string {
	t.Helper()
	var ids []string
	for range 50 {
		resp := apitest.Do(t, h, p, "GET", "/alarms?"+query.Encode(), "")
		require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
		var page alarmPage
		resp.Decode(t, &page)
		for _, a := range page.Items {
			ids = append(ids, a.ID)
		}
		if !page.HasMore {
			return ids
		}
		query.Set("cursor", page.NextCursor)
	}
	t.Fatal("the pages never end")
	return nil
}

// Through the real store: lists are the caller's client's, newest start
// first across pages, filtered as asked, and never show a pending
// excursion; one alarm reads as the list shows it.
func TestAlarmListAndGet(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	a1 := pgtest.MustSensor(t, env.DB, env.ClientA, "a1", "ka1")
	a2 := pgtest.MustSensor(t, env.DB, env.ClientA, "a2", "ka2")
	b1 := pgtest.MustSensor(t, env.DB, env.ClientB, "b1", "kb1")
	base := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	oldHigh := pgtest.MustAlarm(t, env.DB, a1, tempwatch.AlarmHigh, tempwatch.AlarmCleared, base)
	low := pgtest.MustAlarm(t, env.DB, a2, tempwatch.AlarmLow, tempwatch.AlarmCleared, base.Add(time.Hour))
	silent := pgtest.MustAlarm(t, env.DB, a1, tempwatch.AlarmSilent, tempwatch.AlarmOpen, base.Add(2*time.Hour))
	high := pgtest.MustAlarm(t, env.DB, a1, tempwatch.AlarmHigh, tempwatch.AlarmOpen, base.Add(3*time.Hour))
	pending := pgtest.MustAlarm(t, env.DB, a2, tempwatch.AlarmHigh, tempwatch.AlarmPending, base.Add(4*time.Hour))
	ofB := pgtest.MustAlarm(t, env.DB, b1, tempwatch.AlarmHigh, tempwatch.AlarmOpen, base.Add(5*time.Hour))

	tests := []struct {
		name  string
		as    *tempwatch.Principal
		query url.Values
		want  []string
	}{
		{"viewer of A", &env.ViewerA, url.Values{}, []string{high, silent, low, oldHigh}},
		{"viewer of A in pages of one", &env.ViewerA, url.Values{"limit": {"1"}}, []string{high, silent, low, oldHigh}},
		{"viewer of A naming client B", &env.ViewerA, url.Values{"client_id": {env.ClientB}}, nil},
		{"viewer of A naming B's sensor", &env.ViewerA, url.Values{"sensor_id": {b1}}, nil},
		{"client_admin of B", &env.AdminB, url.Values{"limit": {"2"}}, []string{ofB}},
		{"admin", &env.Admin, url.Values{"limit": {"2"}}, []string{ofB, high, silent, low, oldHigh}},
		{"admin naming client A", &env.Admin, url.Values{"client_id": {env.ClientA}}, []string{high, silent, low, oldHigh}},
		{"sensor a1", &env.AdminA, url.Values{"sensor_id": {a1}}, []string{high, silent, oldHigh}},
		{"kind high", &env.AdminA, url.Values{"kind": {"high"}}, []string{high, oldHigh}},
		{"state open", &env.AdminA, url.Values{"state": {"open"}}, []string{high, silent}},
		{"state cleared of a2", &env.AdminA, url.Values{"state": {"cleared"}, "sensor_id": {a2}}, []string{low}},
		{"from and to", &env.AdminA, url.Values{"from": {base.Add(time.Hour).Format(time.RFC3339)},
			"to": {base.Add(3 * time.Hour).Format(time.RFC3339)}}, []string{silent, low}},
		{"to in another zone", &env.AdminA, url.Values{"to": {"2026-07-01T02:00:01+01:00"}}, []string{low, oldHigh}},
		{"to exclusive", &env.AdminA, url.Values{"to": {"2026-07-01T02:00:00+01:00"}}, []string{oldHigh}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listAll(t, h, tt.as, tt.query)
			assert.Equal(t, tt.want, got)
			assert.NotContains(t, got, pending, "a pending excursion is not an alarm")
		})
	}

	resp := apitest.Do(t, h, &env.ViewerA, "GET", "/alarms/"+high, "")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	got := resp.JSON(t)
	assert.Equal(t, a1, got["sensor_id"])
	assert.Equal(t, env.ClientA, got["client_id"])
	assert.Equal(t, "high", got["kind"])
	assert.Equal(t, "open", got["state"])
	assert.Equal(t, 9.5, got["peak"])
	assert.Equal(t, 600.0, got["duration_seconds"])
	assert.Nil(t, got["cleared_at"])
	assert.Nil(t, got["acknowledgement"])
	for _, id := range []string{pending, ofB, "nope"} {
		assert.Equal(t, http.StatusNotFound, apitest.Do(t, h, &env.ViewerA, "GET", "/alarms/"+id, "").Status, "GET /alarms/%s", id)
	}
}

// A viewer acknowledges their client's alarm: the answer and every later
// read show who, when and the comment, the alarm stays open, and a second
// acknowledgement is a 409 that changes nothing; another client's alarm is
// a 404 and is not acknowledged.
func TestAlarmAcknowledge(t *testing.T) {
	t.Parallel()
	env, h := newHandler(t)
	ctx := context.Background()
	sensor := pgtest.MustSensor(t, env.DB, env.ClientA, "a1", "ka1")
	id := pgtest.MustAlarm(t, env.DB, sensor, tempwatch.AlarmHigh, tempwatch.AlarmOpen, time.Now().Add(-time.Hour))

	resp := apitest.Do(t, h, &env.AdminB, "POST", "/alarms/"+id+"/ack", `{"comment":"not mine"}`)
	assert.Equal(t, http.StatusNotFound, resp.Status, "another client's alarm is not found")

	resp = apitest.Do(t, h, &env.ViewerA, "POST", "/alarms/"+id+"/ack", `{"comment":"Compressor restarted — Lüftung geprüft."}`)
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var acked tempwatch.Alarm
	resp.Decode(t, &acked)
	require.NotNil(t, acked.Acknowledgement)
	assert.Equal(t, env.ViewerA.UserID, acked.Acknowledgement.UserID)
	assert.Equal(t, "Compressor restarted — Lüftung geprüft.", acked.Acknowledgement.Comment)
	assert.WithinDuration(t, time.Now(), acked.Acknowledgement.At, time.Minute)
	assert.Equal(t, tempwatch.AlarmOpen, acked.State, "acknowledging does not clear")

	resp = apitest.Do(t, h, &env.Admin, "GET", "/alarms/"+id, "")
	var read tempwatch.Alarm
	resp.Decode(t, &read)
	assert.Equal(t, acked, read)

	resp = apitest.Do(t, h, &env.AdminA, "POST", "/alarms/"+id+"/ack", "")
	assert.Equal(t, http.StatusConflict, resp.Status, string(resp.Body))
	assert.Equal(t, tempwatch.ECONFLICT, resp.JSON(t)["code"])

	var comment, by string
	require.NoError(t, env.DB.QueryRow(ctx, `SELECT ack_comment, acknowledged_by::text FROM alarms WHERE id = $1`, id).Scan(&comment, &by))
	assert.Equal(t, "Compressor restarted — Lüftung geprüft.", comment, "the refused acknowledgement changed nothing")
	assert.Equal(t, env.ViewerA.UserID, by)
	var audits int
	require.NoError(t, env.DB.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE entity = 'alarm' AND entity_id = $1
		AND action = 'acknowledge' AND actor_id = $2`, id, env.ViewerA.UserID).Scan(&audits))
	assert.Equal(t, 1, audits, "the acknowledgement is audited as its caller's")

	cleared := pgtest.MustAlarm(t, env.DB, sensor, tempwatch.AlarmLow, tempwatch.AlarmCleared, time.Now().Add(-2*time.Hour))
	resp = apitest.Do(t, h, &env.Admin, "POST", "/alarms/"+cleared+"/ack", "")
	require.Equal(t, http.StatusOK, resp.Status, "an admin acknowledges any client's alarm, without a body: %s", resp.Body)
	assert.Equal(t, "", resp.JSON(t)["acknowledgement"].(map[string]any)["comment"])
}
