package postgres_test

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// alarmIDs returns the ids of as, in order.
func alarmIDs(as []*tempwatch.Alarm) []string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	return ids
}

// mustUserOf inserts a user of clientID and returns its id.
func mustUserOf(t *testing.T, ctx context.Context, store *postgres.UserStore, clientID string) string {
	t.Helper()
	u := &tempwatch.User{Email: "u-" + clientID[:8] + "@example.test", Role: tempwatch.RoleViewer, ClientID: clientID, PasswordHash: hashA}
	require.NoError(t, store.CreateUser(ctx, u))
	return u.ID
}

// alarmRecords counts the audit events and the outbox events of alarm id.
func alarmRecords(t *testing.T, db *pgxpool.Pool, id string) [2]int {
	t.Helper()
	var audits, outbox int
	require.NoError(t, db.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM audit_events WHERE entity = 'alarm' AND entity_id = $1),
			(SELECT count(*) FROM alarm_events WHERE alarm_id = $1::uuid)`, id).Scan(&audits, &outbox))
	return [2]int{audits, outbox}
}

// An alarm row reads back as the domain's Alarm: times, peak, the time out
// of range (to the clearing while cleared, to the latest reading while
// open), and no acknowledgement until one is recorded. A pending
// excursion is not an alarm: it is nowhere.
func TestAlarmStoreReadsAlarms(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	ctx := context.Background()
	store := postgres.NewAlarmStore(db)
	client := pgtest.MustClient(t, db, "alarms-read", "")
	sensor := pgtest.MustSensor(t, db, client, "d1", "k1")
	start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)

	open := pgtest.MustAlarm(t, db, sensor, tempwatch.AlarmHigh, tempwatch.AlarmOpen, start)
	a, err := store.FindAlarmByID(ctx, open)
	require.NoError(t, err)
	assert.Equal(t, sensor, a.SensorID)
	assert.Equal(t, client, a.ClientID)
	assert.Equal(t, tempwatch.AlarmHigh, a.Kind)
	assert.Equal(t, tempwatch.AlarmOpen, a.State)
	assert.True(t, start.Equal(a.StartedAt), "StartedAt = %v, want %v", a.StartedAt, start)
	assert.True(t, start.Equal(a.OpenedAt))
	assert.True(t, start.Add(10*time.Minute).Equal(a.LastAt))
	assert.Nil(t, a.ClearedAt)
	require.NotNil(t, a.Peak)
	assert.Equal(t, 9.5, *a.Peak)
	assert.Equal(t, 600.0, a.DurationSeconds, "an open alarm lasts to its latest reading")
	assert.Nil(t, a.Acknowledgement)

	cleared := pgtest.MustAlarm(t, db, sensor, tempwatch.AlarmLow, tempwatch.AlarmCleared, start)
	a, err = store.FindAlarmByID(ctx, cleared)
	require.NoError(t, err)
	require.NotNil(t, a.ClearedAt)
	assert.True(t, start.Add(20*time.Minute).Equal(*a.ClearedAt))
	assert.Equal(t, 1200.0, a.DurationSeconds, "a cleared alarm lasts to its clearing")

	silent := pgtest.MustAlarm(t, db, sensor, tempwatch.AlarmSilent, tempwatch.AlarmOpen, start.Add(time.Hour))
	a, err = store.FindAlarmByID(ctx, silent)
	require.NoError(t, err)
	assert.Nil(t, a.Peak, "a silence has no peak")

	pending := pgtest.MustAlarm(t, db, pgtest.MustSensor(t, db, client, "d2", "k2"), tempwatch.AlarmHigh, tempwatch.AlarmPending, start)
	for _, id := range []string{pending, "6f1c1f1e-0000-4000-8000-000000000009", "not-an-id"} {
		_, err = store.FindAlarmByID(ctx, id)
		assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "FindAlarmByID(%s) = %v", id, err)
	}
	all, err := store.FindAlarms(ctx, tempwatch.AlarmFilter{Page: tempwatch.PageRequest{Limit: 10}})
	require.NoError(t, err)
	assert.NotContains(t, alarmIDs(all), pending, "a list never shows a pending excursion")
	assert.Len(t, all, 3)
}

// Lists are newest start first, paged by a keyset on (started_at, id), and
// every filter keeps exactly its alarms.
func TestAlarmStoreFiltersAndPages(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	ctx := context.Background()
	store := postgres.NewAlarmStore(db)
	clientA := pgtest.MustClient(t, db, "alarms-a", "")
	clientB := pgtest.MustClient(t, db, "alarms-b", "")
	a1 := pgtest.MustSensor(t, db, clientA, "a1", "ka1")
	a2 := pgtest.MustSensor(t, db, clientA, "a2", "ka2")
	b1 := pgtest.MustSensor(t, db, clientB, "b1", "kb1")
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

	type row struct {
		sensor, kind, state string
		at                  time.Time
	}
	rows := []row{
		{a1, tempwatch.AlarmHigh, tempwatch.AlarmCleared, base},
		{a1, tempwatch.AlarmLow, tempwatch.AlarmCleared, base.Add(1 * time.Hour)},
		{a2, tempwatch.AlarmHigh, tempwatch.AlarmCleared, base.Add(2 * time.Hour)},
		{a1, tempwatch.AlarmSilent, tempwatch.AlarmCleared, base.Add(3 * time.Hour)},
		{a2, tempwatch.AlarmLow, tempwatch.AlarmOpen, base.Add(4 * time.Hour)},
		{a1, tempwatch.AlarmHigh, tempwatch.AlarmOpen, base.Add(5 * time.Hour)},
		{b1, tempwatch.AlarmHigh, tempwatch.AlarmOpen, base.Add(6 * time.Hour)},
		{a1, tempwatch.AlarmLow, tempwatch.AlarmPending, base.Add(7 * time.Hour)},
		{a2, tempwatch.AlarmHigh, tempwatch.AlarmWithdrawn, base.Add(8 * time.Hour)},
	}
	// Two alarms of one start, on different sensors, so the page boundary
	// falls between rows the id alone orders.
	rows = append(rows, row{a2, tempwatch.AlarmHigh, tempwatch.AlarmCleared, base})
	ids := make([]string, len(rows))
	startOf := map[string]time.Time{}
	for i, r := range rows {
		ids[i] = pgtest.MustAlarm(t, db, r.sensor, r.kind, r.state, r.at)
		startOf[ids[i]] = r.at
	}
	// The brute-force oracle: what each filter keeps, newest start first,
	// then the greater id first.
	want := func(keep func(r row) bool) []string {
		var out []string
		for i, r := range rows {
			if r.state != tempwatch.AlarmPending && keep(r) {
				out = append(out, ids[i])
			}
		}
		slices.SortStableFunc(out, func(x, y string) int {
			return cmp.Or(startOf[y].Compare(startOf[x]), strings.Compare(y, x))
		})
		return out
	}
	clientOf := map[string]string{a1: clientA, a2: clientA, b1: clientB}
	// live tells whether r is live at some time of [from, to), from
	// MustAlarm's times: cleared 20 minutes after its start (not live then),
	// a withdrawn one's last reading out of range 10 minutes after (live
	// then); an open one goes on.
	live := func(r row, from, to time.Time) bool {
		if !to.IsZero() && !r.at.Before(to) {
			return false
		}
		switch {
		case from.IsZero() || r.state == tempwatch.AlarmOpen || !r.at.Before(from):
			return true
		case r.state == tempwatch.AlarmWithdrawn:
			return !r.at.Add(10 * time.Minute).Before(from)
		default:
			return r.at.Add(20 * time.Minute).After(from)
		}
	}
	tests := []struct {
		name   string
		filter tempwatch.AlarmFilter
		keep   func(r row) bool
	}{
		{"all", tempwatch.AlarmFilter{}, func(row) bool { return true }},
		{"client A", tempwatch.AlarmFilter{ClientID: clientA}, func(r row) bool { return clientOf[r.sensor] == clientA }},
		{"client B", tempwatch.AlarmFilter{ClientID: clientB}, func(r row) bool { return clientOf[r.sensor] == clientB }},
		{"sensor a1", tempwatch.AlarmFilter{SensorID: a1}, func(r row) bool { return r.sensor == a1 }},
		{"sensor of A in B's list", tempwatch.AlarmFilter{ClientID: clientB, SensorID: a1}, func(row) bool { return false }},
		{"kind high", tempwatch.AlarmFilter{Kind: tempwatch.AlarmHigh}, func(r row) bool { return r.kind == tempwatch.AlarmHigh }},
		{"kind silent", tempwatch.AlarmFilter{Kind: tempwatch.AlarmSilent}, func(r row) bool { return r.kind == tempwatch.AlarmSilent }},
		{"state open", tempwatch.AlarmFilter{State: tempwatch.AlarmOpen}, func(r row) bool { return r.state == tempwatch.AlarmOpen }},
		{"state withdrawn", tempwatch.AlarmFilter{State: tempwatch.AlarmWithdrawn}, func(r row) bool { return r.state == tempwatch.AlarmWithdrawn }},
		{"from: live at or after it", tempwatch.AlarmFilter{From: base.Add(4 * time.Hour)}, func(r row) bool { return live(r, base.Add(4*time.Hour), time.Time{}) }},
		{"from: cleared after it", tempwatch.AlarmFilter{From: base.Add(3*time.Hour + 10*time.Minute)}, func(r row) bool {
			return live(r, base.Add(3*time.Hour+10*time.Minute), time.Time{})
		}},
		{"from: cleared at it", tempwatch.AlarmFilter{From: base.Add(3*time.Hour + 20*time.Minute)}, func(r row) bool {
			return live(r, base.Add(3*time.Hour+20*time.Minute), time.Time{})
		}},
		{"from: a withdrawn one's last reading", tempwatch.AlarmFilter{From: base.Add(8*time.Hour + 5*time.Minute)}, func(r row) bool {
			return live(r, base.Add(8*time.Hour+5*time.Minute), time.Time{})
		}},
		{"from: at a withdrawn one's last reading", tempwatch.AlarmFilter{From: base.Add(8*time.Hour + 10*time.Minute)}, func(r row) bool {
			return live(r, base.Add(8*time.Hour+10*time.Minute), time.Time{})
		}},
		{"from: at a start", tempwatch.AlarmFilter{From: base.Add(2 * time.Hour)}, func(r row) bool { return live(r, base.Add(2*time.Hour), time.Time{}) }},
		{"to exclusive", tempwatch.AlarmFilter{To: base.Add(2 * time.Hour)}, func(r row) bool { return live(r, time.Time{}, base.Add(2*time.Hour)) }},
		{"a window after an open one started", tempwatch.AlarmFilter{From: base.Add(9 * time.Hour), To: base.Add(10 * time.Hour)}, func(r row) bool {
			return live(r, base.Add(9*time.Hour), base.Add(10*time.Hour))
		}},
		{"A's open highs in a window", tempwatch.AlarmFilter{ClientID: clientA, Kind: tempwatch.AlarmHigh, State: tempwatch.AlarmOpen,
			From: base.Add(time.Hour), To: base.Add(6 * time.Hour)}, func(r row) bool {
			return clientOf[r.sensor] == clientA && r.kind == tempwatch.AlarmHigh && r.state == tempwatch.AlarmOpen &&
				live(r, base.Add(time.Hour), base.Add(6*time.Hour))
		}},
		{"malformed client", tempwatch.AlarmFilter{ClientID: "nope"}, func(row) bool { return false }},
		{"malformed sensor", tempwatch.AlarmFilter{SensorID: "nope"}, func(row) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 3, 500} {
				var got []string
				f := tt.filter
				f.Page = tempwatch.PageRequest{Limit: limit}
				for range 20 {
					page, err := store.FindAlarms(ctx, f)
					require.NoError(t, err)
					require.LessOrEqual(t, len(page), limit+1)
					more := len(page) > limit
					page = page[:min(len(page), limit)]
					got = append(got, alarmIDs(page)...)
					if !more {
						break
					}
					last := page[len(page)-1]
					f.Page.Cursor = &tempwatch.Cursor{CreatedAt: last.StartedAt, ID: last.ID}
				}
				assert.Equal(t, want(tt.keep), got, "FindAlarms(%s) in pages of %d", tt.name, limit)
			}
		})
	}
	_, err := store.FindAlarms(ctx, tempwatch.AlarmFilter{Page: tempwatch.PageRequest{Limit: 5,
		Cursor: &tempwatch.Cursor{CreatedAt: base, ID: "42"}}})
	assert.Equal(t, tempwatch.EINVALID, tempwatch.ErrorCode(err), "a cursor of another list is refused")
}

// Acknowledging records who, when and why on the alarm, an audit event
// with the states before and after, and an alarm.acknowledged event whose
// body is the alarm as the API shows it, all in one transaction; it does
// not clear the alarm; a second acknowledgement is a conflict and changes
// nothing.
func TestAlarmStoreAcknowledges(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	ctx, adminID := actingAdmin("203.0.113.9")
	store := postgres.NewAlarmStore(db)
	client := pgtest.MustClient(t, db, "alarms-ack", "")
	sensor := pgtest.MustSensor(t, db, client, "d1", "k1")
	user := mustUserOf(t, ctx, postgres.NewUserStore(db), client)
	id := pgtest.MustAlarm(t, db, sensor, tempwatch.AlarmHigh, tempwatch.AlarmOpen, time.Now().Add(-time.Hour))

	before := time.Now()
	a, err := store.AcknowledgeAlarm(ctx, id, user, "Door was open; closed it.")
	require.NoError(t, err)
	require.NotNil(t, a.Acknowledgement)
	assert.Equal(t, user, a.Acknowledgement.UserID)
	assert.Equal(t, "Door was open; closed it.", a.Acknowledgement.Comment)
	assert.WithinDuration(t, before, a.Acknowledgement.At, time.Minute)
	assert.Equal(t, tempwatch.AlarmOpen, a.State, "acknowledging does not clear an alarm")
	got, err := store.FindAlarmByID(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, a, got, "the acknowledgement is stored")

	events, err := postgres.NewAuditLog(db).FindAuditEvents(ctx, tempwatch.AuditFilter{Entity: tempwatch.AuditAlarm, EntityID: id,
		Page: tempwatch.PageRequest{Limit: 10}})
	require.NoError(t, err)
	require.Len(t, events, 1)
	ev := events[0]
	assert.Equal(t, tempwatch.ActionAcknowledge, ev.Action)
	assert.Equal(t, client, ev.ClientID)
	assert.Equal(t, adminID, ev.ActorID, "the actor is the caller of the context")
	assert.Equal(t, "203.0.113.9", ev.ActorAddress)
	assert.Nil(t, state(t, ev.Before)["acknowledgement"])
	assert.Equal(t, "Door was open; closed it.", state(t, ev.After)["acknowledgement"].(map[string]any)["comment"])

	var typ, eventClient string
	var body []byte
	var n int
	require.NoError(t, db.QueryRow(ctx, `SELECT type, client_id, body::text, count(*) OVER () FROM alarm_events WHERE alarm_id = $1`, id).
		Scan(&typ, &eventClient, &body, &n))
	assert.Equal(t, 1, n)
	assert.Equal(t, tempwatch.EventAlarmAcknowledged, typ)
	assert.Equal(t, client, eventClient)
	var bodyAlarm tempwatch.Alarm
	require.NoError(t, json.Unmarshal(body, &bodyAlarm))
	want, _ := json.Marshal(a)
	gotBody, _ := json.Marshal(bodyAlarm)
	assert.JSONEq(t, string(want), string(gotBody), "the event's body is the alarm as the API shows it")

	_, err = store.AcknowledgeAlarm(ctx, id, user, "again")
	assert.Equal(t, tempwatch.ECONFLICT, tempwatch.ErrorCode(err), "AcknowledgeAlarm twice = %v", err)
	got, err = store.FindAlarmByID(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "Door was open; closed it.", got.Acknowledgement.Comment, "a refused acknowledgement changes nothing")
	assert.Equal(t, [2]int{1, 1}, alarmRecords(t, db, id), "a refused acknowledgement records no event")

	cleared := pgtest.MustAlarm(t, db, sensor, tempwatch.AlarmLow, tempwatch.AlarmCleared, time.Now().Add(-3*time.Hour))
	a, err = store.AcknowledgeAlarm(ctx, cleared, user, "")
	require.NoError(t, err, "a cleared alarm can be acknowledged after the fact")
	assert.Equal(t, "", a.Acknowledgement.Comment)

	pending := pgtest.MustAlarm(t, db, sensor, tempwatch.AlarmLow, tempwatch.AlarmPending, time.Now())
	for _, missing := range []string{pending, "6f1c1f1e-0000-4000-8000-000000000009", "x"} {
		_, err = store.AcknowledgeAlarm(ctx, missing, user, "")
		assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "AcknowledgeAlarm(%s) = %v", missing, err)
	}
	other := pgtest.MustAlarm(t, db, sensor, tempwatch.AlarmSilent, tempwatch.AlarmOpen, time.Now().Add(-5*time.Hour))
	for _, bad := range []string{string(make([]rune, 1001)), "line\nbreak", "nul\x00"} {
		_, err = store.AcknowledgeAlarm(ctx, other, user, bad)
		assert.Equal(t, map[string]string{"comment": tempwatch.ErrorFields(err)["comment"]}, tempwatch.ErrorFields(err))
		assert.Equal(t, tempwatch.EINVALID, tempwatch.ErrorCode(err), "AcknowledgeAlarm(%q) = %v", bad, err)
	}
}

// Of acknowledgements at once, exactly one wins; the others are conflicts,
// and the alarm has one audit event and one outbox event.
func TestAlarmStoreAcknowledgesOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	ctx, _ := actingAdmin("203.0.113.10")
	store := postgres.NewAlarmStore(db)
	client := pgtest.MustClient(t, db, "alarms-race", "")
	sensor := pgtest.MustSensor(t, db, client, "d1", "k1")
	user := mustUserOf(t, ctx, postgres.NewUserStore(db), client)
	id := pgtest.MustAlarm(t, db, sensor, tempwatch.AlarmHigh, tempwatch.AlarmOpen, time.Now().Add(-time.Hour))

	const n = 8
	codes := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := store.AcknowledgeAlarm(ctx, id, user, "mine")
			codes[i] = tempwatch.ErrorCode(err)
			if err == nil {
				codes[i] = "ok"
			}
		})
	}
	close(start)
	wg.Wait()
	count := map[string]int{}
	for _, c := range codes {
		count[c]++
	}
	assert.Equal(t, map[string]int{"ok": 1, tempwatch.ECONFLICT: n - 1}, count)
	assert.Equal(t, [2]int{1, 1}, alarmRecords(t, db, id), "one audit event and one outbox event")
}

// A sensor's status, in the answer of the update that changed its rule,
// is that of its alarms as the update re-evaluated them.
func TestSensorStatusAfterRuleChange(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	ctx := context.Background()
	client := pgtest.MustClient(t, db, "status-rule", "")
	id := pgtest.MustSensor(t, db, client, "d1", "k1")
	now := time.Now().UTC().Truncate(time.Second)
	var rs []tempwatch.Reading
	for i, v := range []float64{5, 7, 7.5} {
		rs = append(rs, tempwatch.Reading{SensorID: id, MeasuredAt: now.Add(time.Duration(i-3) * time.Minute), Value: v})
	}
	_, err := postgres.NewReadingStore(db).WriteReadings(ctx, rs)
	require.NoError(t, err)
	sensors := postgres.NewSensorStore(db)
	s, err := sensors.FindSensorByID(ctx, id)
	require.NoError(t, err)
	require.Equal(t, tempwatch.SensorOnline, s.Status)

	s, err = sensors.UpdateSensor(ctx, id, tempwatch.SensorUpdate{AlertHigh: tempwatch.NullFloat{Set: true, Value: new(6.0)}})
	require.NoError(t, err)
	assert.Equal(t, tempwatch.SensorInAlarm, s.Status, "a lower limit opened an alarm")
	s, err = sensors.UpdateSensor(ctx, id, tempwatch.SensorUpdate{AlertHigh: tempwatch.NullFloat{Set: true, Value: new(20.0)}})
	require.NoError(t, err)
	assert.Equal(t, tempwatch.SensorOnline, s.Status, "a higher limit ended the alarm")
}
