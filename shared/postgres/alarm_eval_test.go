package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var alarmT0 = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

func alarmMinute(i int) time.Time { return alarmT0.Add(time.Duration(i) * time.Minute) }

func fptr(v float64) *float64 { return &v }

// alarmSensor is a sensor under test with its rule, set in the database.
type alarmSensor struct {
	id, clientID string
	rule         tempwatch.ExcursionRule
}

func mustAlarmSensor(t *testing.T, db *pgxpool.Pool, clientID, device string, rule tempwatch.ExcursionRule) alarmSensor {
	t.Helper()
	id := pgtest.MustSensor(t, db, clientID, device, "key-"+device+"-0123456789abcdef")
	_, err := db.Exec(context.Background(), `UPDATE sensors SET alert_high = $2, alert_low = $3,
		alarm_delay = make_interval(secs => $4), alarm_hysteresis = $5 WHERE id = $1`,
		id, rule.High, rule.Low, rule.Delay.Seconds(), rule.Hysteresis)
	require.NoError(t, err)
	return alarmSensor{id: id, clientID: clientID, rule: rule}
}

// storedAlarm is an alarms row as the oracle states it.
type storedAlarm struct {
	Kind, State                  string
	Start, Last, Cleared, Opened time.Time
	Peak                         float64
}

func (a storedAlarm) String() string {
	return fmt.Sprintf("%s %s %s..%s cleared %s opened %s peak %v", a.Kind, a.State, a.Start.Format("15:04"),
		a.Last.Format("15:04"), a.Cleared.Format("15:04"), a.Opened.Format("15:04"), a.Peak)
}

// wantAlarms is what the alarms table must hold (withdrawn rows aside) for
// the sensor's readings: every excursion of the whole history, evaluated in
// one pass; alarms open or cleared, the one under way pending while it is
// shorter than the delay, and short ones that are over nowhere.
func wantAlarms(rule tempwatch.ExcursionRule, samples []tempwatch.Sample) []storedAlarm {
	var out []storedAlarm
	for _, e := range rule.Excursions(samples) {
		a := storedAlarm{Kind: e.Kind, Start: e.Start, Last: e.Last, Cleared: e.Cleared, Peak: e.Peak}
		switch {
		case e.IsAlarm(rule.Delay) && e.Open():
			a.State, a.Opened = tempwatch.AlarmOpen, e.Start.Add(rule.Delay)
		case e.IsAlarm(rule.Delay):
			a.State, a.Opened = tempwatch.AlarmCleared, e.Start.Add(rule.Delay)
		case e.Open():
			a.State = tempwatch.AlarmPending
		default:
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b storedAlarm) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return compareStrings(a.Kind, b.Kind)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func readAlarms(t *testing.T, db *pgxpool.Pool, sensorID string) []storedAlarm {
	t.Helper()
	rows, _ := db.Query(context.Background(), `SELECT kind, state, started_at, last_at,
		coalesce(cleared_at, 'epoch'), coalesce(opened_at, 'epoch'), peak
		FROM alarms WHERE sensor_id = $1 AND state <> 'withdrawn' AND kind <> 'silent' ORDER BY started_at, kind`, sensorID)
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storedAlarm, error) {
		var a storedAlarm
		err := row.Scan(&a.Kind, &a.State, &a.Start, &a.Last, &a.Cleared, &a.Opened, &a.Peak)
		for _, tp := range []*time.Time{&a.Start, &a.Last, &a.Cleared, &a.Opened} {
			if tp.Equal(time.Unix(0, 0)) {
				*tp = time.Time{}
			} else {
				*tp = tp.UTC()
			}
		}
		return a, err
	})
	require.NoError(t, err)
	return got
}

func readSamples(t *testing.T, db *pgxpool.Pool, sensorID string) []tempwatch.Sample {
	t.Helper()
	rows, _ := db.Query(context.Background(), `SELECT measured_at, value FROM readings WHERE sensor_id = $1 ORDER BY measured_at`, sensorID)
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tempwatch.Sample, error) {
		var s tempwatch.Sample
		err := row.Scan(&s.At, &s.Value)
		s.At = s.At.UTC()
		return s, err
	})
	require.NoError(t, err)
	return got
}

// checkAlarmEvents checks each alarm's events tell its story: opened, then
// cleared and opened again in turn, ending as its state says; withdrawn
// last if at all; a pending row told of nothing.
func checkAlarmEvents(t *testing.T, db *pgxpool.Pool, sensorID, context string) {
	t.Helper()
	rows, _ := db.Query(t.Context(), `SELECT a.state, coalesce(array_agg(e.type ORDER BY e.id) FILTER (WHERE e.id IS NOT NULL), '{}'),
			alarm_json(a), coalesce((array_agg(e.body ORDER BY e.id DESC))[1], 'null')
		FROM alarms a LEFT JOIN alarm_events e ON e.alarm_id = a.id WHERE a.sensor_id = $1 AND a.kind <> 'silent' GROUP BY a.id`, sensorID)
	type story struct {
		state      string
		events     []string
		row, event tempwatch.Alarm
	}
	stories, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (story, error) {
		var s story
		var rowJSON, eventJSON []byte
		if err := row.Scan(&s.state, &s.events, &rowJSON, &eventJSON); err != nil {
			return s, err
		}
		if err := json.Unmarshal(rowJSON, &s.row); err != nil {
			return s, err
		}
		return s, json.Unmarshal(eventJSON, &s.event)
	})
	require.NoError(t, err)
	for _, s := range stories {
		last := ""
		for i, ev := range s.events {
			want := tempwatch.EventAlarmOpened
			if last == tempwatch.EventAlarmOpened {
				want = tempwatch.EventAlarmCleared
			}
			if ev == tempwatch.EventAlarmWithdrawn {
				require.Equal(t, len(s.events)-1, i, "%s: withdrawn is the last event: %v", context, s.events)
				require.NotEmpty(t, last, "%s: a withdrawn alarm had been told of: %v", context, s.events)
				last = ev
				continue
			}
			require.Equal(t, want, ev, "%s: events %v", context, s.events)
			last = ev
		}
		want := map[string]string{tempwatch.AlarmPending: "", tempwatch.AlarmOpen: tempwatch.EventAlarmOpened,
			tempwatch.AlarmCleared: tempwatch.EventAlarmCleared, tempwatch.AlarmWithdrawn: tempwatch.EventAlarmWithdrawn}[s.state]
		require.Equal(t, want, last, "%s: a %s alarm's events end so: %v", context, s.state, s.events)
		if last != "" && s.event.UpdatedAt.Equal(s.row.UpdatedAt) { // not changed since (an open alarm grows untold)
			require.Equal(t, s.row, s.event, "%s: the last event's body is the alarm as alarm_json shows it", context)
		}
	}
}

func randomAlarmRule(rng *rand.Rand) tempwatch.ExcursionRule {
	r := tempwatch.ExcursionRule{Hysteresis: float64(rng.IntN(3)) * 0.5, Delay: time.Duration(rng.IntN(3)*2) * time.Minute}
	if rng.IntN(5) > 0 {
		r.High = fptr(8)
	}
	if rng.IntN(5) > 0 {
		r.Low = fptr(2)
	}
	return r
}

func randomAlarmValue(rng *rand.Rand) float64 { return float64(rng.IntN(25))*0.5 - 1 }

// The alarms table is the one-pass evaluation of every sensor's whole
// history after each change, whatever order the readings came in: batches
// in order and late, duplicates, corrections of value and time, deletions
// and single creations; two sensors with their own rules share batches.
func TestAlarmsMatchBruteForce(t *testing.T) {
	db := pgtest.MustDB(t)
	store := postgres.NewReadingStore(db)
	ctx := t.Context()
	client := pgtest.MustClient(t, db, "brute", "")
	rng := rand.New(rand.NewPCG(13, 14))
	for h := range 30 {
		sensors := []alarmSensor{
			mustAlarmSensor(t, db, client, "a"+strconv.Itoa(h), randomAlarmRule(rng)),
			mustAlarmSensor(t, db, client, "b"+strconv.Itoa(h), randomAlarmRule(rng)),
		}
		type pending struct {
			sensor int
			r      tempwatch.Reading
		}
		var todo []pending
		for si, s := range sensors {
			for m := range 40 {
				if rng.IntN(6) > 0 {
					todo = append(todo, pending{si, tempwatch.Reading{SensorID: s.id, MeasuredAt: alarmMinute(m), Value: randomAlarmValue(rng)}})
				}
			}
		}
		// Mostly in order, some late: swap a few neighbours far apart.
		for range len(todo) / 6 {
			i, j := rng.IntN(len(todo)), rng.IntN(len(todo))
			todo[i], todo[j] = todo[j], todo[i]
		}
		var sent []tempwatch.Reading
		check := func(step string) {
			t.Helper()
			for _, s := range sensors {
				got := readAlarms(t, db, s.id)
				want := wantAlarms(s.rule, readSamples(t, db, s.id))
				require.Equal(t, fmt.Sprint(want), fmt.Sprint(got), "history %d, %s, rule %+v", h, step, s.rule)
				checkAlarmEvents(t, db, s.id, fmt.Sprintf("history %d, %s", h, step))
			}
		}
		for len(todo) > 0 {
			n := min(len(todo), 1+rng.IntN(8))
			byKey := map[string]tempwatch.Reading{}
			for _, p := range todo[:n] {
				byKey[p.r.SensorID+p.r.MeasuredAt.String()] = p.r
			}
			if len(sent) > 0 && rng.IntN(3) == 0 { // a redelivery
				d := sent[rng.IntN(len(sent))]
				byKey[d.SensorID+d.MeasuredAt.String()] = d
			}
			var batch []tempwatch.Reading
			for _, r := range byKey {
				batch = append(batch, r)
			}
			_, err := store.WriteReadings(ctx, batch)
			require.NoError(t, err)
			sent = append(sent, batch...)
			todo = todo[n:]
			check("after a batch")
		}
		for range 6 {
			s := sensors[rng.IntN(len(sensors))]
			var id int64
			m := rng.IntN(42)
			err := db.QueryRow(ctx, `SELECT id FROM readings WHERE sensor_id = $1 ORDER BY random() LIMIT 1`, s.id).Scan(&id)
			require.NoError(t, err)
			switch rng.IntN(4) {
			case 0:
				_, err = store.UpdateReading(ctx, strconv.FormatInt(id, 10), tempwatch.ReadingUpdate{Value: fptr(randomAlarmValue(rng))})
			case 1:
				at := alarmMinute(m).Add(30 * time.Second)
				_, err = store.UpdateReading(ctx, strconv.FormatInt(id, 10), tempwatch.ReadingUpdate{MeasuredAt: &at})
			case 2:
				_, err = store.DeleteReading(ctx, strconv.FormatInt(id, 10))
			default:
				err = store.CreateReading(ctx, &tempwatch.Reading{SensorID: s.id, MeasuredAt: alarmMinute(m).Add(15 * time.Second), Value: randomAlarmValue(rng)})
			}
			if tempwatch.ErrorCode(err) == tempwatch.ECONFLICT {
				continue // that minute was taken
			}
			require.NoError(t, err)
			check("after a correction")
		}
	}
}

// Batches of one sensor written at once, in any order, leave the same
// alarms as the one-pass evaluation: the sensor lock serialises their
// evaluation, so no two evaluators continue one excursion.
func TestAlarmsUnderConcurrentBatches(t *testing.T) {
	db := pgtest.MustDB(t)
	store := postgres.NewReadingStore(db)
	client := pgtest.MustClient(t, db, "concurrent", "")
	rng := rand.New(rand.NewPCG(3, 4))
	for h := range 8 {
		s := mustAlarmSensor(t, db, client, "c"+strconv.Itoa(h), tempwatch.ExcursionRule{High: fptr(8), Low: fptr(2), Hysteresis: 0.5, Delay: 2 * time.Minute})
		var all []tempwatch.Reading
		for m := range 120 {
			all = append(all, tempwatch.Reading{SensorID: s.id, MeasuredAt: alarmMinute(m), Value: randomAlarmValue(rng)})
		}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := w * 10; i < len(all); i += 40 {
					_, err := store.WriteReadings(t.Context(), all[i:min(i+10, len(all))])
					assert.NoError(t, err)
				}
			})
		}
		wg.Wait()
		assert.Equal(t, fmt.Sprint(wantAlarms(s.rule, readSamples(t, db, s.id))), fmt.Sprint(readAlarms(t, db, s.id)), "history %d", h)
		checkAlarmEvents(t, db, s.id, fmt.Sprintf("history %d", h))
	}
}

// A batch that fails inside its transaction (here a reading of a sensor
// that does not exist: the write's foreign key) stores none of its readings
// and alarms, and its connection is rolled back and reused, not dropped by
// the pool; the next batch continues the alarm and the limit rollups.
func TestFailedBatchRollsBack(t *testing.T) {
	db := pgtest.MustDB(t)
	store := postgres.NewReadingStore(db)
	client := pgtest.MustClient(t, db, "failed", "")
	s := mustAlarmSensor(t, db, client, "f1", tempwatch.ExcursionRule{High: fptr(8)})
	reading := func(m int, v float64) tempwatch.Reading {
		return tempwatch.Reading{SensorID: s.id, MeasuredAt: alarmMinute(m), Value: v}
	}
	_, err := store.WriteReadings(t.Context(), []tempwatch.Reading{reading(0, 5), reading(1, 9)})
	require.NoError(t, err)
	conns := db.Stat().NewConnsCount()

	_, err = store.WriteReadings(t.Context(), []tempwatch.Reading{reading(2, 9.5),
		{SensorID: "6f1c0b1e-3a43-4a5e-9a65-4b8a3c2f9d10", MeasuredAt: alarmMinute(2), Value: 9.5}})
	require.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "%v", err)
	var readings int
	require.NoError(t, db.QueryRow(t.Context(), `SELECT count(*) FROM readings WHERE sensor_id = $1`, s.id).Scan(&readings))
	require.Equal(t, 2, readings, "the failed batch stored nothing")
	require.Equal(t, "[high open 08:01..08:01 cleared 00:00 opened 08:01 peak 9]", fmt.Sprint(readAlarms(t, db, s.id)))

	_, err = store.WriteReadings(t.Context(), []tempwatch.Reading{reading(3, 9.5), reading(4, 5)})
	require.NoError(t, err)
	require.Equal(t, conns, db.Stat().NewConnsCount(), "the failed batch's connection went back to the pool")
	require.Equal(t, fmt.Sprint(wantAlarms(s.rule, readSamples(t, db, s.id))), fmt.Sprint(readAlarms(t, db, s.id)))
	var aboveUS int64
	require.NoError(t, db.QueryRow(t.Context(), `SELECT coalesce(sum(above_us), 0) FROM limit_rollups WHERE sensor_id = $1`, s.id).Scan(&aboveUS))
	require.Equal(t, (3 * time.Minute).Microseconds(), aboveUS, "above from minute 1 to 4")
}

// An alarm someone was told of is never deleted: when a correction takes
// its excursion away it is withdrawn, its acknowledgement kept. A batch
// records when the sensor was last seen and clears its silence.
func TestAlarmWithdrawnAndSilenceCleared(t *testing.T) {
	db := pgtest.MustDB(t)
	store := postgres.NewReadingStore(db)
	ctx := t.Context()
	client := pgtest.MustClient(t, db, "withdrawn", "")
	s := mustAlarmSensor(t, db, client, "w", tempwatch.ExcursionRule{High: fptr(5)})
	_, err := db.Exec(ctx, `INSERT INTO alarms (sensor_id, client_id, kind, state, started_at, last_at, opened_at)
		VALUES ($1, $2, 'silent', 'open', $3, $3, $3)`, s.id, client, alarmMinute(-30))
	require.NoError(t, err)

	results, err := store.WriteReadings(ctx, []tempwatch.Reading{
		{SensorID: s.id, MeasuredAt: alarmMinute(0), Value: 4},
		{SensorID: s.id, MeasuredAt: alarmMinute(1), Value: 7},
		{SensorID: s.id, MeasuredAt: alarmMinute(2), Value: 4},
	})
	require.NoError(t, err)
	var measured, received time.Time
	require.NoError(t, db.QueryRow(ctx, `SELECT last_measured_at, last_received_at FROM sensors WHERE id = $1`, s.id).Scan(&measured, &received))
	assert.Equal(t, alarmMinute(2), measured.UTC())
	assert.WithinDuration(t, time.Now(), received, time.Minute)
	var silent string
	require.NoError(t, db.QueryRow(ctx, `SELECT state FROM alarms WHERE sensor_id = $1 AND kind = 'silent'`, s.id).Scan(&silent))
	assert.Equal(t, tempwatch.AlarmCleared, silent, "the batch ends the silence")

	var id string
	require.NoError(t, db.QueryRow(ctx, `UPDATE alarms SET acknowledged_at = now(), ack_comment = 'door left open'
		WHERE sensor_id = $1 AND kind = 'high' RETURNING id`, s.id).Scan(&id))
	_, err = store.UpdateReading(ctx, strconv.FormatInt(results[1].ReadingID, 10), tempwatch.ReadingUpdate{Value: fptr(4.5)})
	require.NoError(t, err)
	var state, comment string
	require.NoError(t, db.QueryRow(ctx, `SELECT state, ack_comment FROM alarms WHERE id = $1`, id).Scan(&state, &comment))
	assert.Equal(t, tempwatch.AlarmWithdrawn, state)
	assert.Equal(t, "door left open", comment)
	rows, _ := db.Query(ctx, `SELECT e.type || ' ' || (e.body->>'state') FROM alarm_events e
		JOIN alarms a ON a.id = e.alarm_id WHERE a.sensor_id = $1 ORDER BY e.id`, s.id)
	events, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"alarm.opened cleared", "alarm.cleared cleared", "alarm.cleared cleared", "alarm.withdrawn withdrawn"}, events)
}

// A sensor update that changes its rule re-evaluates the present under
// the new rule and leaves alarms that are over as they were raised.
func TestAlarmRuleChange(t *testing.T) {
	db := pgtest.MustDB(t)
	store := postgres.NewReadingStore(db)
	ctx := t.Context()
	client := pgtest.MustClient(t, db, "rule", "")
	s := mustAlarmSensor(t, db, client, "r", tempwatch.ExcursionRule{High: fptr(8)})
	var rs []tempwatch.Reading
	for m, v := range []float64{5, 9, 5, 6, 7, 7.5} {
		rs = append(rs, tempwatch.Reading{SensorID: s.id, MeasuredAt: alarmMinute(m), Value: v})
	}
	_, err := store.WriteReadings(ctx, rs)
	require.NoError(t, err)
	require.Equal(t, "[high cleared 08:01..08:01 cleared 08:02 opened 08:01 peak 9]", fmt.Sprint(readAlarms(t, db, s.id)))

	sensors := postgres.NewSensorStore(db)
	_, err = sensors.UpdateSensor(ctx, s.id, tempwatch.SensorUpdate{AlertHigh: tempwatch.NullFloat{Set: true, Value: fptr(5.5)}})
	require.NoError(t, err)
	assert.Equal(t, "[high cleared 08:01..08:01 cleared 08:02 opened 08:01 peak 9 high open 08:03..08:05 cleared 00:00 opened 08:03 peak 7.5]",
		fmt.Sprint(readAlarms(t, db, s.id)), "above 5.5 since 08:03 (the last settled reading is 08:02); the past alarm as it was")

	_, err = sensors.UpdateSensor(ctx, s.id, tempwatch.SensorUpdate{AlertHigh: tempwatch.NullFloat{Set: true}})
	require.NoError(t, err)
	var state string
	require.NoError(t, db.QueryRow(ctx, `SELECT state FROM alarms WHERE sensor_id = $1 AND started_at = $2`, s.id, alarmMinute(3)).Scan(&state))
	assert.Equal(t, tempwatch.AlarmWithdrawn, state, "the limit is gone: the open alarm with it")
}
