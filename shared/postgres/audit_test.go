package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// actingAdmin returns a context carrying an admin caller from addr, as the
// middleware leaves it, and the admin's id.
func actingAdmin(addr string) (context.Context, string) {
	id := auth.NewID()
	ctx := tempwatch.WithPrincipal(context.Background(), tempwatch.Principal{UserID: id, Role: tempwatch.RoleAdmin})
	return tempwatch.WithRemoteAddress(ctx, addr), id
}

// state decodes an event's before or after.
func state(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	if raw == nil {
		return nil
	}
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m), "%s", raw)
	return m
}

// Every change of users, clients, sensors, device keys and measurements
// leaves one event, with who, from where, and the states before and after,
// and never a secret.
func TestStoresRecordEveryChange(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	ctx, adminID := actingAdmin("198.51.100.7")
	clients, users, sensors, readings := postgres.NewClientStore(db), postgres.NewUserStore(db),
		postgres.NewSensorStore(db), postgres.NewReadingStore(db)
	trail := postgres.NewAuditLog(db)

	c := &tempwatch.Client{Name: "Acme", Slug: "acme-audit"}
	require.NoError(t, clients.CreateClient(ctx, c))
	renamed := "Acme Cold"
	_, err := clients.UpdateClient(ctx, c.ID, tempwatch.ClientUpdate{Name: &renamed})
	require.NoError(t, err)

	u := &tempwatch.User{Email: "ops@acme.test", Role: tempwatch.RoleViewer, ClientID: c.ID, PasswordHash: hashA}
	require.NoError(t, users.CreateUser(ctx, u))
	u.Role, u.PasswordHash = tempwatch.RoleClientAdmin, hashB
	require.NoError(t, users.UpdateUser(ctx, u))
	_, err = users.ChangePassword(ctx, u.ID, hashB, hashC)
	require.NoError(t, err)
	require.NoError(t, users.DeleteUser(ctx, u.ID))

	sn := &tempwatch.Sensor{ClientID: c.ID, DeviceID: "cr-1", Name: "Cold room", Unit: "C", MinValue: -40, MaxValue: 40,
		SilenceAfterSeconds: tempwatch.DefaultSilenceAfterSeconds}
	_, err = sensors.CreateSensor(ctx, sn, []byte("key hash one"))
	require.NoError(t, err)
	hall := "Hall B"
	_, err = sensors.UpdateSensor(ctx, sn.ID, tempwatch.SensorUpdate{Location: &hall})
	require.NoError(t, err)
	_, _, err = sensors.SetDeviceKeyHash(ctx, sn.ID, []byte("key hash two"))
	require.NoError(t, err)

	m := &tempwatch.Reading{SensorID: sn.ID, Value: 4.5, MeasuredAt: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}
	require.NoError(t, readings.CreateReading(ctx, m))
	mID := strconv.FormatInt(m.ID, 10)
	corrected := 5.25
	_, err = readings.UpdateReading(ctx, mID, tempwatch.ReadingUpdate{Value: &corrected})
	require.NoError(t, err)
	_, err = readings.DeleteReading(ctx, mID)
	require.NoError(t, err)
	require.NoError(t, sensors.DeleteSensor(ctx, sn.ID))
	_, err = clients.DeleteClient(ctx, c.ID)
	require.NoError(t, err)

	events, err := trail.FindAuditEvents(ctx, tempwatch.AuditFilter{Page: tempwatch.PageRequest{Limit: 100}})
	require.NoError(t, err)
	type what struct{ entity, action, id string }
	want := []what{ // newest first
		{"client", "delete", c.ID},
		{"sensor", "delete", sn.ID},
		{"measurement", "delete", mID},
		{"measurement", "update", mID},
		{"measurement", "create", mID},
		{"sensor", "key_rotation", sn.ID},
		{"sensor", "update", sn.ID},
		{"sensor", "create", sn.ID},
		{"user", "delete", u.ID},
		{"user", "password_change", u.ID},
		{"user", "update", u.ID},
		{"user", "create", u.ID},
		{"client", "update", c.ID},
		{"client", "create", c.ID},
	}
	var got []what
	byWhat := map[what]*tempwatch.AuditEvent{}
	for _, e := range events {
		w := what{e.Entity, e.Action, e.EntityID}
		got = append(got, w)
		byWhat[w] = e
		assert.Equal(t, adminID, e.ActorID, "%v: actor", w)
		assert.Equal(t, "198.51.100.7", e.ActorAddress, "%v: address", w)
		assert.Equal(t, c.ID, e.ClientID, "%v: every event is client %s's", w, c.ID)
		for _, raw := range []json.RawMessage{e.Before, e.After} {
			assert.NotContains(t, string(raw), "argon2id", "%v: no password hash", w)
			assert.NotContains(t, string(raw), "key hash", "%v: no device key hash", w)
			assert.NotContains(t, string(raw), "password_hash", "%v", w)
		}
	}
	require.Equal(t, want, got)

	userUpdate := byWhat[what{"user", "update", u.ID}]
	assert.Equal(t, "viewer", state(t, userUpdate.Before)["role"])
	assert.Equal(t, "client_admin", state(t, userUpdate.After)["role"])
	assert.Equal(t, true, state(t, userUpdate.After)["password_changed"], "an admin's reset says so, without the hash")
	assert.Nil(t, state(t, userUpdate.Before)["password_changed"])
	assert.Equal(t, true, state(t, byWhat[what{"user", "password_change", u.ID}].After)["password_changed"])
	assert.Equal(t, "ops@acme.test", state(t, byWhat[what{"user", "delete", u.ID}].Before)["email"])
	assert.Nil(t, byWhat[what{"user", "delete", u.ID}].After)
	assert.Nil(t, byWhat[what{"user", "create", u.ID}].Before)

	assert.Equal(t, "Acme", state(t, byWhat[what{"client", "update", c.ID}].Before)["name"])
	assert.Equal(t, "Acme Cold", state(t, byWhat[what{"client", "update", c.ID}].After)["name"])
	assert.Equal(t, "Acme Cold", state(t, byWhat[what{"client", "delete", c.ID}].Before)["name"])

	assert.Equal(t, "", state(t, byWhat[what{"sensor", "update", sn.ID}].Before)["location"])
	assert.Equal(t, "Hall B", state(t, byWhat[what{"sensor", "update", sn.ID}].After)["location"])
	assert.Equal(t, "cr-1", state(t, byWhat[what{"sensor", "key_rotation", sn.ID}].After)["device_id"])

	assert.Equal(t, 4.5, state(t, byWhat[what{"measurement", "create", mID}].After)["value"])
	assert.Equal(t, 4.5, state(t, byWhat[what{"measurement", "update", mID}].Before)["value"])
	assert.Equal(t, 5.25, state(t, byWhat[what{"measurement", "update", mID}].After)["value"])
	assert.Equal(t, 5.25, state(t, byWhat[what{"measurement", "delete", mID}].Before)["value"])
	assert.Nil(t, byWhat[what{"measurement", "delete", mID}].After)
}

// A refused change leaves no event: the record is written in the change's
// transaction.
func TestRefusedChangeLeavesNoEvent(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	ctx, _ := actingAdmin("198.51.100.8")
	users := postgres.NewUserStore(db)
	admin := &tempwatch.User{Email: "only@admin.test", Role: tempwatch.RoleAdmin, PasswordHash: hashA}
	require.NoError(t, users.CreateUser(ctx, admin))
	err := users.DeleteUser(ctx, admin.ID)
	require.Equal(t, tempwatch.ECONFLICT, tempwatch.ErrorCode(err), "deleting the last admin: %v", err)
	pgtest.MustClient(t, db, "acme-refused", "UTC") // written around the store: no event
	taken := "acme-refused"
	require.NoError(t, postgres.NewClientStore(db).CreateClient(ctx, &tempwatch.Client{Name: "Other", Slug: "other-refused"}))

	events, err := postgres.NewAuditLog(db).FindAuditEvents(ctx, tempwatch.AuditFilter{Page: tempwatch.PageRequest{Limit: 10}})
	require.NoError(t, err)
	require.Len(t, events, 2, "the admin's creation and the other client's, not the refused delete")
	_, err = postgres.NewClientStore(db).UpdateClient(ctx, events[0].EntityID, tempwatch.ClientUpdate{Slug: &taken})
	require.Equal(t, tempwatch.ECONFLICT, tempwatch.ErrorCode(err), "a taken slug: %v", err)
	events, err = postgres.NewAuditLog(db).FindAuditEvents(ctx, tempwatch.AuditFilter{Page: tempwatch.PageRequest{Limit: 10}})
	require.NoError(t, err)
	assert.Len(t, events, 2, "the refused update left no event")
}

// The table refuses UPDATE, DELETE and TRUNCATE to anyone: append-only in
// the database, not only in the code.
func TestAuditEventsAreAppendOnly(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	ctx, _ := actingAdmin("198.51.100.9")
	ev := &tempwatch.AuditEvent{Action: tempwatch.ActionLogin, Entity: tempwatch.AuditUser, EntityID: auth.NewID()}
	require.NoError(t, postgres.NewAuditLog(db).RecordAudit(ctx, ev))
	for _, stmt := range []string{
		`UPDATE audit_events SET action = 'logout' WHERE id = '` + ev.ID + `'`,
		`DELETE FROM audit_events WHERE id = '` + ev.ID + `'`,
		`DELETE FROM audit_events`,
		`TRUNCATE audit_events`,
	} {
		_, err := db.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "%s: %v, want a refusal", stmt, err)
		assert.Equal(t, "42501", pgErr.Code, "%s", stmt)
		assert.Contains(t, pgErr.Message, "append-only", "%s", stmt)
	}
	got, err := postgres.NewAuditLog(db).FindAuditEventByID(ctx, ev.ID)
	require.NoError(t, err)
	assert.Equal(t, tempwatch.ActionLogin, got.Action, "the event is as recorded")
}

// The list's filters each select what they name, and its pages walk every
// event once, newest first.
func TestFindAuditEventsFiltersAndPages(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	trail := postgres.NewAuditLog(db)
	ctx := context.Background()
	clientA, clientB, ann, bob := auth.NewID(), auth.NewID(), auth.NewID(), auth.NewID()
	record := func(actor, client, action, entity, id string) *tempwatch.AuditEvent {
		ev := &tempwatch.AuditEvent{ActorID: actor, ClientID: client, Action: action, Entity: entity, EntityID: id}
		require.NoError(t, trail.RecordAudit(ctx, ev))
		return ev
	}
	e1 := record(ann, clientA, "create", "sensor", "s1")
	e2 := record(ann, clientA, "update", "sensor", "s1")
	e3 := record(bob, clientB, "update", "sensor", "s2")
	e4 := record(bob, clientA, "delete", "measurement", "7")
	e5 := record("", "", "login_failed", "user", "")
	ids := func(f tempwatch.AuditFilter) []string {
		t.Helper()
		if f.Page.Limit == 0 {
			f.Page.Limit = 100
		}
		evs, err := trail.FindAuditEvents(ctx, f)
		require.NoError(t, err)
		var out []string
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    tempwatch.AuditFilter
		want []*tempwatch.AuditEvent
	}{
		{"all", tempwatch.AuditFilter{}, []*tempwatch.AuditEvent{e5, e4, e3, e2, e1}},
		{"client", tempwatch.AuditFilter{ClientID: clientA}, []*tempwatch.AuditEvent{e4, e2, e1}},
		{"actor", tempwatch.AuditFilter{ActorID: bob}, []*tempwatch.AuditEvent{e4, e3}},
		{"entity", tempwatch.AuditFilter{Entity: "sensor"}, []*tempwatch.AuditEvent{e3, e2, e1}},
		{"entity and id", tempwatch.AuditFilter{Entity: "sensor", EntityID: "s1"}, []*tempwatch.AuditEvent{e2, e1}},
		{"action", tempwatch.AuditFilter{Action: "update"}, []*tempwatch.AuditEvent{e3, e2}},
		{"time range", tempwatch.AuditFilter{From: e2.At, To: e4.At}, []*tempwatch.AuditEvent{e3, e2}},
		{"client and actor", tempwatch.AuditFilter{ClientID: clientA, ActorID: bob}, []*tempwatch.AuditEvent{e4}},
		{"not an id", tempwatch.AuditFilter{ActorID: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			for _, e := range tt.want {
				want = append(want, e.ID)
			}
			assert.Equal(t, want, ids(tt.f), "FindAuditEvents(%+v)", tt.f)
		})
	}

	// Pages of two walk all five, newest first, each once.
	var walked []string
	page := tempwatch.PageRequest{Limit: 2}
	for range 5 {
		evs, err := trail.FindAuditEvents(ctx, tempwatch.AuditFilter{Page: page})
		require.NoError(t, err)
		n := min(len(evs), page.Limit)
		for _, e := range evs[:n] {
			walked = append(walked, e.ID)
		}
		if len(evs) <= page.Limit {
			break
		}
		last := evs[n-1]
		page.Cursor = &tempwatch.Cursor{CreatedAt: last.At, ID: last.ID}
	}
	assert.Equal(t, []string{e5.ID, e4.ID, e3.ID, e2.ID, e1.ID}, walked)

	_, err := trail.FindAuditEventByID(ctx, auth.NewID())
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err))
	_, err = trail.FindAuditEventByID(ctx, "not-a-uuid")
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err))
}
