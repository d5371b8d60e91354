package postgres

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Alarm evaluation keeps the alarms table equal to the excursions
// (tempwatch.ExcursionRule) of each sensor's stored readings, inside the
// transaction that changed the readings, so any function instance can
// continue where another stopped.
//
// Lock order: a writer locks the sensors it evaluates (FOR NO KEY UPDATE,
// in id order) before it touches their readings, rollups or alarms. Ingest
// batches, corrections and rule changes of one sensor are so serialised,
// and each sees the alarms the one before committed (READ COMMITTED takes a
// new snapshot per statement, after the lock was granted). The lock does
// not block the FOR KEY SHARE of the readings' foreign key check. The
// alarms it reads it locks too (after the sensors), so an acknowledgement
// that commits meanwhile is in what it reads and so in its events' bodies.
//
// A batch whose readings of a sensor are all newer than its newest stored
// reading (last_measured_at: the usual case) continues the live excursion
// of each kind from the batch alone; no reading is read back. Any other
// change (a late reading, a correction, a deletion) re-evaluates a window
// per kind, reading only that window: from the start of the stored
// excursion around the change's first time (the sensor is inside just
// before an excursion starts) or else the last reading before it that is
// settled for the kind, to the first settled reading after the change's
// last time (inside again, whatever came before).
//
// Stored excursions of the window are then matched to the evaluated ones in
// time order: an evaluated excursion takes the id of the earliest stored
// one it overlaps (a split keeps the id on its first part, a merge the
// earliest's). A stored one left over is deleted while pending (nobody was
// told of it) and withdrawn otherwise: its notifications and its
// acknowledgement are a record. So is an alarm that no longer lasts its
// delay. Pending excursions are stored, so the fast path can continue
// them; no API shows them.

// excursionKinds are the kinds evaluation keeps, in the order it writes them.
var excursionKinds = []string{tempwatch.ExcursionHigh, tempwatch.ExcursionLow}

// querier is what evaluation sends its statements through: a transaction,
// or a connection that ingest holds in one (readings.go).
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// alarmSensor is what evaluation needs of a locked sensor.
type alarmSensor struct {
	id, clientID string
	rule         tempwatch.ExcursionRule
	lastMeasured *time.Time // before this change; nil before the first reading
}

func (s *alarmSensor) hasLimits() bool { return s.rule.High != nil || s.rule.Low != nil }

// settledBound is the threshold of Settled for kind as SQL compares it:
// high settles at value <= bound, low at value >= bound.
func (s *alarmSensor) settledBound(kind string) float64 {
	if kind == tempwatch.ExcursionHigh {
		if s.rule.High == nil {
			return math.Inf(1)
		}
		return *s.rule.High - s.rule.Hysteresis
	}
	if s.rule.Low == nil {
		return math.Inf(-1)
	}
	return *s.rule.Low + s.rule.Hysteresis
}

// sensorChange is what changed in one sensor's readings: the measured times
// touched, from and to, and for an ingest batch the readings it inserted,
// by time; or, for a rule change, the span to evaluate under the new rule.
type sensorChange struct {
	from, to    time.Time
	inserted    []tempwatch.Sample
	ruleChanged bool
}

// add widens c to hold t.
func (c *sensorChange) add(t time.Time) {
	if c.from.IsZero() || t.Before(c.from) {
		c.from = t
	}
	if t.After(c.to) {
		c.to = t
	}
}

// lockAlarmSensorsSQL locks the sensors in id order and reads their rules.
const lockAlarmSensorsSQL = `
SELECT id, client_id, alert_low, alert_high, (extract(epoch FROM alarm_delay) * 1000000)::bigint,
	alarm_hysteresis, last_measured_at
FROM sensors WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`

// alarmState is what evaluation reads of the sensors it locked: their
// rules, their live excursions, by sensor id and kind, and which of them
// are silent (an open silence).
type alarmState struct {
	sensors map[string]*alarmSensor
	live    map[string][]storedAlarm
	silent  map[string]bool
}

// queueAlarmState queues on b the lock of the sensors ids (see the top of
// this file) and the read of their live excursions, which fill st when b's
// results are read. Ingest queues its own lock (queueIngestState).
func queueAlarmState(b *pgx.Batch, ids []string, st *alarmState) {
	st.sensors = make(map[string]*alarmSensor, len(ids))
	b.Queue(lockAlarmSensorsSQL, binaryUUIDs(ids)).Query(func(rows pgx.Rows) error { return st.scanSensors(rows, nil) })
	queueLiveExcursions(b, ids, st)
}

// scanSensors adds the sensors of rows, a lock's result, to st: the
// columns of lockAlarmSensorsSQL, then those that extra scans into, which
// each (if not nil) reads after every row.
func (st *alarmState) scanSensors(rows pgx.Rows, each func(*alarmSensor), extra ...any) error {
	defer rows.Close()
	for rows.Next() {
		s := &alarmSensor{} // anew: pgx may scan into what the pointers of the last one point to
		var delayMicros int64
		dest := append([]any{&s.id, &s.clientID, &s.rule.Low, &s.rule.High, &delayMicros, &s.rule.Hysteresis, &s.lastMeasured}, extra...)
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("lock sensors: %w", err)
		}
		s.rule.Delay = time.Duration(delayMicros) * time.Microsecond
		st.sensors[s.id] = s
		if each != nil {
			each(s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lock sensors: %w", err)
	}
	return nil
}

// queueLiveExcursions queues on b the read of the live excursions and open
// silences of the sensors ids, locked before, into st. A statement after
// the lock: what the sweep or a batch committed while the lock waited is
// in its snapshot.
func queueLiveExcursions(b *pgx.Batch, ids []string, st *alarmState) {
	st.live, st.silent = map[string][]storedAlarm{}, map[string]bool{}
	b.Queue(`SELECT `+storedAlarmColumns+` FROM alarms
		WHERE sensor_id = ANY($1::uuid[]) AND state IN ('pending', 'open') AND (kind <> 'silent' OR state = 'open')
		ORDER BY id FOR NO KEY UPDATE`, binaryUUIDs(ids)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			a, sensorID, err := scanStoredAlarm(rows)
			if err != nil {
				return fmt.Errorf("read live excursions: %w", err)
			}
			if a.exc.Kind == tempwatch.AlarmSilent {
				st.silent[sensorID] = true
				continue
			}
			st.live[sensorID+"/"+a.exc.Kind] = append(st.live[sensorID+"/"+a.exc.Kind], a)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read live excursions: %w", err)
		}
		return nil
	})
}

// storedAlarm is an alarms row of kind high or low.
type storedAlarm struct {
	id, state string
	exc       tempwatch.Excursion
	opened    *time.Time
	ack       *tempwatch.Acknowledgement
	created   time.Time
}

const storedAlarmColumns = `id, sensor_id, kind, state, started_at, last_at, cleared_at, peak, opened_at,
	created_at, acknowledged_at, coalesce(acknowledged_by::text, ''), ack_comment`

// scanStoredAlarm scans a row of first (if any), then storedAlarmColumns.
func scanStoredAlarm(row pgx.CollectableRow, first ...any) (storedAlarm, string, error) {
	var a storedAlarm
	var sensorID, ackBy, ackComment string
	var cleared, ackAt *time.Time
	var peak *float64
	err := row.Scan(append(first, &a.id, &sensorID, &a.exc.Kind, &a.state, &a.exc.Start, &a.exc.Last, &cleared, &peak, &a.opened,
		&a.created, &ackAt, &ackBy, &ackComment)...)
	if cleared != nil {
		a.exc.Cleared = *cleared
	}
	if peak != nil {
		a.exc.Peak = *peak
	}
	if ackAt != nil {
		a.ack = &tempwatch.Acknowledgement{UserID: ackBy, At: *ackAt, Comment: ackComment}
	}
	return a, sensorID, err
}

// evaluateAlarms plans the writes that bring the alarms of the sensors of
// st up to date with changes (by sensor id). Only the changes that are not
// in-order batches read anything, all of them together (reevaluate).
func evaluateAlarms(ctx context.Context, tx querier, st *alarmState, changes map[string]*sensorChange) (*alarmPlan, error) {
	plan := &alarmPlan{now: time.Now().UTC().Truncate(time.Microsecond)}
	ids := make([]string, 0, len(changes))
	for id := range changes {
		ids = append(ids, id)
	}
	slices.Sort(ids) // a stable write order
	var again []reevaluation
	for _, id := range ids {
		s, c := st.sensors[id], changes[id]
		switch {
		case s == nil:
		case c.inserted != nil && (s.lastMeasured == nil || c.from.After(*s.lastMeasured)):
			if !s.hasLimits() {
				continue
			}
			for _, kind := range excursionKinds {
				stored := st.live[id+"/"+kind]
				var open *tempwatch.Excursion
				if len(stored) > 0 {
					open = &stored[0].exc
				}
				plan.reconcile(s, stored, continueExcursion(s.rule, kind, open, c.inserted))
			}
		case s.hasLimits() || c.ruleChanged:
			again = append(again, reevaluation{s, c})
		}
	}
	if len(again) > 0 {
		if err := plan.reevaluate(ctx, tx, again); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// continueExcursion evaluates kind over samples (by time, all after the
// excursion under way, open, if any) and returns the excursions from open
// on: those that cleared, then the one under way after the last sample.
func continueExcursion(rule tempwatch.ExcursionRule, kind string, open *tempwatch.Excursion, samples []tempwatch.Sample) []tempwatch.Excursion {
	var out []tempwatch.Excursion
	var cleared *tempwatch.Excursion
	for _, s := range samples {
		if open, cleared = rule.Step(kind, open, s); cleared != nil {
			out = append(out, *cleared)
		}
	}
	if open != nil {
		out = append(out, *open)
	}
	return out
}

// reevaluation is a sensor whose change evaluation cannot continue from
// the batch alone.
type reevaluation struct {
	s *alarmSensor
	c *sensorChange
}

// windowsSQL bounds the re-evaluation of each (sensor, kind) w around a
// change from w.from_at to w.to_at (see the top of this file): lo, the
// start of the stored excursion holding from_at or else the last reading
// before it settled for the kind (NULL: the beginning), and hi, the first
// settled reading after to_at (NULL: the end). w.bound is the settled
// bound and w.high whether the kind is high. A rule change (w.anchor
// false) skips the stored excursion: it was raised under the old rule,
// whose start says nothing of where the new rule's excursion starts.
const windowsSQL = `
SELECT coalesce(
		(SELECT min(started_at) FROM alarms WHERE w.anchor AND sensor_id = w.sensor AND kind = w.kind AND state <> 'withdrawn'
			AND started_at <= w.from_at AND (cleared_at IS NULL OR cleared_at >= w.from_at)),
		(SELECT max(measured_at) FROM readings WHERE sensor_id = w.sensor AND measured_at < w.from_at
			AND CASE WHEN w.high THEN value <= w.bound ELSE value >= w.bound END)),
	(SELECT min(measured_at) FROM readings WHERE sensor_id = w.sensor AND measured_at > w.to_at
		AND CASE WHEN w.high THEN value <= w.bound ELSE value >= w.bound END)
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::float8[], $6::bool[], $7::bool[])
	WITH ORDINALITY AS w(sensor, kind, from_at, to_at, bound, high, anchor, n)
ORDER BY w.n`

// windowSamplesSQL reads the readings of each sensor u.sensor from u.lo to
// u.hi (NULL: unbounded), by sensor (u.n) and time.
const windowSamplesSQL = `
SELECT u.n, r.measured_at, r.value
FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS u(sensor, lo, hi, n)
CROSS JOIN LATERAL (
	SELECT measured_at, value FROM readings
	WHERE sensor_id = u.sensor AND measured_at >= coalesce(u.lo, '-infinity') AND measured_at <= coalesce(u.hi, 'infinity')
) r
ORDER BY u.n, r.measured_at`

// windowAlarmsSQL reads and locks the stored excursions (withdrawn ones
// aside) of each (sensor, kind) u that start from u.lo to u.hi, by window
// (u.n) and start.
const windowAlarmsSQL = `
SELECT u.n, ` + storedAlarmColumns + `
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS u(w_sensor, w_kind, w_lo, w_hi, n)
JOIN alarms a ON a.sensor_id = u.w_sensor AND a.kind = u.w_kind AND a.state <> 'withdrawn'
	AND a.started_at >= coalesce(u.w_lo, '-infinity') AND a.started_at <= coalesce(u.w_hi, 'infinity')
ORDER BY u.n, a.started_at
FOR NO KEY UPDATE OF a`

// reevaluate plans the re-evaluation of each sensor's excursions around
// its change of readings (from and to, inclusive): the windows of every
// sensor and kind in one statement, then their readings and stored
// excursions in one round trip.
func (p *alarmPlan) reevaluate(ctx context.Context, tx querier, again []reevaluation) error {
	n := len(again) * len(excursionKinds)
	wSensors, wKinds, wFrom, wTo := make([]string, 0, n), make([]string, 0, n), make([]time.Time, 0, n), make([]time.Time, 0, n)
	wBounds, wHigh, wAnchor := make([]float64, 0, n), make([]bool, 0, n), make([]bool, 0, n)
	for _, r := range again {
		for _, kind := range excursionKinds {
			wSensors, wKinds = append(wSensors, r.s.id), append(wKinds, kind)
			wFrom, wTo = append(wFrom, r.c.from), append(wTo, r.c.to)
			wBounds, wHigh = append(wBounds, r.s.settledBound(kind)), append(wHigh, kind == tempwatch.ExcursionHigh)
			wAnchor = append(wAnchor, !r.c.ruleChanged)
		}
	}
	type window struct{ lo, hi *time.Time }
	windows := make([]window, 0, n)
	rows, _ := tx.Query(ctx, windowsSQL, wSensors, wKinds, wFrom, wTo, wBounds, wHigh, wAnchor)
	var w window
	if _, err := pgx.ForEachRow(rows, []any{&w.lo, &w.hi}, func() error {
		windows = append(windows, w)
		return nil
	}); err != nil {
		return fmt.Errorf("find the re-evaluation windows: %w", err)
	}
	if len(windows) != n {
		return fmt.Errorf("find the re-evaluation windows: %d of %d", len(windows), n)
	}

	// Per sensor the union of its kinds' windows (nil: unbounded).
	sLo, sHi := make([]*time.Time, len(again)), make([]*time.Time, len(again))
	wLo, wHi := make([]*time.Time, n), make([]*time.Time, n)
	for i := range again {
		for k := range excursionKinds {
			w := windows[i*len(excursionKinds)+k]
			wLo[i*len(excursionKinds)+k], wHi[i*len(excursionKinds)+k] = w.lo, w.hi
			if k == 0 || (sLo[i] != nil && (w.lo == nil || w.lo.Before(*sLo[i]))) {
				sLo[i] = w.lo
			}
			if k == 0 || (sHi[i] != nil && (w.hi == nil || w.hi.After(*sHi[i]))) {
				sHi[i] = w.hi
			}
		}
	}
	sIDs := make([]string, len(again))
	for i, r := range again {
		sIDs[i] = r.s.id
	}
	samples := make([][]tempwatch.Sample, len(again))
	stored := make([][]storedAlarm, n)
	b := &pgx.Batch{}
	b.Queue(windowSamplesSQL, binaryUUIDs(sIDs), sLo, sHi).Query(func(rows pgx.Rows) error {
		var i int
		var x tempwatch.Sample
		_, err := pgx.ForEachRow(rows, []any{&i, &x.At, &x.Value}, func() error {
			samples[i-1] = append(samples[i-1], x)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read the re-evaluation windows: %w", err)
		}
		return nil
	})
	b.Queue(windowAlarmsSQL, binaryUUIDs(wSensors), wKinds, wLo, wHi).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var i int
			a, _, err := scanStoredAlarm(rows, &i)
			if err != nil {
				return fmt.Errorf("read stored excursions: %w", err)
			}
			stored[i-1] = append(stored[i-1], a)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read stored excursions: %w", err)
		}
		return nil
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	for i, r := range again {
		for k, kind := range excursionKinds {
			j := i*len(excursionKinds) + k
			in := samples[i]
			if wLo[j] != nil {
				in = in[sortSearchTime(in, *wLo[j]):]
			}
			if wHi[j] != nil {
				in = in[:sortSearchTime(in, wHi[j].Add(time.Microsecond))]
			}
			p.reconcile(r.s, stored[j], continueExcursion(r.s.rule, kind, nil, in))
		}
	}
	return nil
}

// sortSearchTime is the index of the first sample at or after t.
func sortSearchTime(samples []tempwatch.Sample, t time.Time) int {
	i, _ := slices.BinarySearchFunc(samples, t, func(s tempwatch.Sample, t time.Time) int { return s.At.Compare(t) })
	return i
}

// alarmPlan is the writes that make the alarms table match an evaluation,
// made at now.
type alarmPlan struct {
	now                time.Time
	deletes, withdraws []string
	updates, inserts   []alarmRow
	events             []alarmEvent
}

// alarmRow is an alarm as evaluation writes it.
type alarmRow struct {
	id, sensorID, clientID, state string
	exc                           tempwatch.Excursion
	opened                        *time.Time
	ack                           *tempwatch.Acknowledgement
	created                       time.Time
}

// alarm is r as the API shows it, updated at now.
func (r alarmRow) alarm(now time.Time) tempwatch.Alarm {
	a := tempwatch.Alarm{ID: r.id, SensorID: r.sensorID, ClientID: r.clientID, Kind: r.exc.Kind, State: r.state,
		StartedAt: r.exc.Start, OpenedAt: r.exc.Start, LastAt: r.exc.Last, Peak: &r.exc.Peak,
		DurationSeconds: r.exc.Duration().Seconds(), Acknowledgement: r.ack, CreatedAt: r.created, UpdatedAt: now}
	if r.opened != nil {
		a.OpenedAt = *r.opened
	}
	if !r.exc.Open() {
		a.ClearedAt = &r.exc.Cleared
	}
	return a
}

// alarmEvent is an alarm_events row: what happened to the alarm, and the
// alarm after it.
type alarmEvent struct {
	clientID, typ string
	alarm         tempwatch.Alarm
}

// opened counts the plan's alarm.opened events by kind.
func (p *alarmPlan) opened() map[string]int {
	var n map[string]int
	for _, e := range p.events {
		if e.typ == tempwatch.EventAlarmOpened {
			if n == nil {
				n = map[string]int{}
			}
			n[e.alarm.Kind]++
		}
	}
	return n
}

func (p *alarmPlan) event(typ string, r alarmRow) {
	p.events = append(p.events, alarmEvent{r.clientID, typ, r.alarm(p.now)})
}

// reconcile plans the writes that replace stored (the sensor's stored
// excursions of one kind in the evaluated window, by start) with evaluated
// (the excursions of that window, by start).
func (p *alarmPlan) reconcile(s *alarmSensor, stored []storedAlarm, evaluated []tempwatch.Excursion) {
	taken := make([]bool, len(stored))
	for _, e := range evaluated {
		isAlarm := e.IsAlarm(s.rule.Delay)
		if !isAlarm && !e.Open() {
			continue // over before it lasted the delay: nobody is told of it
		}
		row := alarmRow{sensorID: s.id, clientID: s.clientID, state: tempwatch.AlarmPending, exc: e, created: p.now}
		if isAlarm {
			opened := e.Start.Add(s.rule.Delay)
			row.state, row.opened = tempwatch.AlarmOpen, &opened
			if !e.Open() {
				row.state = tempwatch.AlarmCleared
			}
		}
		match := -1
		for i, o := range stored {
			// An alarm that no longer lasts its delay is not continued by
			// what is left: it is withdrawn, and that is pending anew.
			if !taken[i] && overlaps(o.exc, e) && (isAlarm || o.state == tempwatch.AlarmPending) {
				match = i
				break
			}
		}
		wasAlarm, wasOpen := false, false
		if match >= 0 {
			taken[match] = true
			o := stored[match]
			row.id, row.ack, row.created = o.id, o.ack, o.created
			wasAlarm, wasOpen = o.state != tempwatch.AlarmPending, o.state == tempwatch.AlarmOpen
			if o.state != row.state || !sameExcursion(o.exc, e) {
				p.updates = append(p.updates, row)
			}
		} else {
			row.id = newAlarmID()
			p.inserts = append(p.inserts, row)
		}
		if isAlarm && !wasOpen && (!wasAlarm || e.Open()) {
			p.event(tempwatch.EventAlarmOpened, row)
		}
		if row.state == tempwatch.AlarmCleared && (wasOpen || !wasAlarm) {
			p.event(tempwatch.EventAlarmCleared, row)
		}
	}
	for i, o := range stored {
		switch {
		case taken[i]:
		case o.state == tempwatch.AlarmPending:
			p.deletes = append(p.deletes, o.id)
		default:
			p.withdraws = append(p.withdraws, o.id)
			p.event(tempwatch.EventAlarmWithdrawn, alarmRow{id: o.id, sensorID: s.id, clientID: s.clientID,
				state: tempwatch.AlarmWithdrawn, exc: o.exc, opened: o.opened, ack: o.ack, created: o.created})
		}
	}
}

// overlaps reports whether two excursions share time: each runs from its
// start to its clearing reading, exclusive, or on while it lasts.
func overlaps(a, b tempwatch.Excursion) bool {
	return (a.Open() || b.Start.Before(a.Cleared)) && (b.Open() || a.Start.Before(b.Cleared))
}

func sameExcursion(a, b tempwatch.Excursion) bool {
	return a.Start.Equal(b.Start) && a.Last.Equal(b.Last) && a.Cleared.Equal(b.Cleared) && a.Peak == b.Peak
}

// The writes of a plan (queue).
const (
	deleteAlarmsSQL   = `DELETE FROM alarms WHERE id = ANY($1::uuid[])`
	withdrawAlarmsSQL = `UPDATE alarms SET state = 'withdrawn', updated_at = $2 WHERE id = ANY($1::uuid[])`
	updateAlarmsSQL   = `
UPDATE alarms a SET state = u.state, started_at = u.started, last_at = u.last,
	opened_at = u.opened, cleared_at = u.cleared, peak = u.peak, updated_at = $8
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[], $7::float8[])
	AS u(id, state, started, last, opened, cleared, peak)
WHERE a.id = u.id`
	insertAlarmsSQL = `
INSERT INTO alarms (id, sensor_id, client_id, kind, state, started_at, last_at, opened_at, cleared_at, peak,
	created_at, updated_at)
SELECT *, $11::timestamptz, $11::timestamptz FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
	$6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::float8[])`
	insertEventsSQL = `
INSERT INTO alarm_events (alarm_id, client_id, type, body, created_at)
SELECT e.id, e.client, e.type, e.body, $5
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS e(id, client, type, body, n)
ORDER BY e.n`
)

// queue queues the plan's writes on b: deletions and withdrawals first,
// then updates that leave a row no longer live, then the others, then
// inserts, so the unique indexes on live excursions and on starts never
// see two rows at once; then the events, each with its alarm's body as
// the plan leaves it.
func (p *alarmPlan) queue(b *pgx.Batch) {
	if len(p.deletes) > 0 {
		b.Queue(deleteAlarmsSQL, binaryUUIDs(p.deletes))
	}
	if len(p.withdraws) > 0 {
		b.Queue(withdrawAlarmsSQL, binaryUUIDs(p.withdraws), p.now)
	}
	live := func(r alarmRow) bool { return r.state == tempwatch.AlarmPending || r.state == tempwatch.AlarmOpen }
	slices.SortStableFunc(p.updates, func(a, b alarmRow) int {
		switch {
		case live(a) == live(b):
			return 0
		case live(a):
			return 1
		}
		return -1
	})
	for i := 0; i < len(p.updates); {
		j := i + 1
		for j < len(p.updates) && live(p.updates[j]) == live(p.updates[i]) {
			j++
		}
		a := alarmArrays(p.updates[i:j])
		b.Queue(updateAlarmsSQL, binaryUUIDs(a.ids), a.states, a.starts, a.lasts, a.opened, a.cleared, a.peaks, p.now)
		i = j
	}
	if len(p.inserts) > 0 {
		a := alarmArrays(p.inserts)
		b.Queue(insertAlarmsSQL, binaryUUIDs(a.ids), binaryUUIDs(a.sensors), binaryUUIDs(a.clients), a.kinds, a.states, a.starts, a.lasts, a.opened, a.cleared, a.peaks, p.now)
	}
	if len(p.events) > 0 {
		n := len(p.events)
		ids, clients, types, bodies := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i, e := range p.events {
			body, err := json.Marshal(e.alarm)
			if err != nil {
				panic(err) // an Alarm always marshals
			}
			ids[i], clients[i], types[i], bodies[i] = e.alarm.ID, e.clientID, e.typ, string(body)
		}
		b.Queue(insertEventsSQL, binaryUUIDs(ids), binaryUUIDs(clients), types, bodies, p.now)
	}
}

// alarmWriteArrays are rows as the arrays the writes unnest.
type alarmWriteArrays struct {
	ids, sensors, clients, kinds, states []string
	starts, lasts                        []time.Time
	opened, cleared                      []*time.Time
	peaks                                []float64
}

func alarmArrays(rows []alarmRow) alarmWriteArrays {
	var a alarmWriteArrays
	for _, r := range rows {
		var cleared *time.Time
		if !r.exc.Open() {
			c := r.exc.Cleared
			cleared = &c
		}
		a.ids, a.sensors, a.clients = append(a.ids, r.id), append(a.sensors, r.sensorID), append(a.clients, r.clientID)
		a.kinds, a.states = append(a.kinds, r.exc.Kind), append(a.states, r.state)
		a.starts, a.lasts = append(a.starts, r.exc.Start), append(a.lasts, r.exc.Last)
		a.opened, a.cleared, a.peaks = append(a.opened, r.opened), append(a.cleared, cleared), append(a.peaks, r.exc.Peak)
	}
	return a
}

// newAlarmID returns a random (version 4) UUID: evaluation names new rows
// itself, so their events are written in the same round trip.
func newAlarmID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// markSeenSQL records the newest reading and the receipt of a batch per
// sensor.
const markSeenSQL = `
UPDATE sensors s SET last_measured_at = greatest(s.last_measured_at, seen.measured), last_received_at = now()
FROM unnest($1::uuid[], $2::timestamptz[]) AS seen(id, measured) WHERE s.id = seen.id`

// clearSilencesSQL clears the open silence of each sensor $1 with its
// event: never before it opened (the sweep opens by its own clock, which
// may be ahead of this transaction's start).
const clearSilencesSQL = `
WITH cleared AS (
	UPDATE alarms a SET state = 'cleared', cleared_at = greatest(now(), a.opened_at, a.last_at), updated_at = now()
	WHERE a.sensor_id = ANY($1::uuid[]) AND a.kind = 'silent' AND a.state = 'open'
	RETURNING a
)
INSERT INTO alarm_events (alarm_id, client_id, type, body)
SELECT (cleared.a).id, (cleared.a).client_id, 'alarm.cleared', alarm_json(cleared.a) FROM cleared`

// reevaluateSensor re-evaluates the alarms of the sensor (locked by tx)
// around a correction of its readings at times, and keeps its newest
// measured time an upper bound of its readings' (a correction may add a
// newer one; one that took the newest away leaves a later bound, which
// only sends the next batch down evaluation's slower path).
//
// After a change of the sensor's rule (ruleChanged) it re-evaluates the
// present under the new rule: the window around its live excursions and
// its newest reading (back to the last reading settled under the new rule).
// Alarms over before that keep the rule they were raised under: a
// settings change does not rewrite the record.
func reevaluateSensor(ctx context.Context, tx pgx.Tx, sensorID string, ruleChanged bool, times ...time.Time) error {
	var st alarmState
	b := &pgx.Batch{}
	queueAlarmState(b, []string{sensorID}, &st)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	s := st.sensors[sensorID]
	c := &sensorChange{ruleChanged: ruleChanged}
	for _, t := range times {
		c.add(t)
	}
	if ruleChanged {
		if s == nil || s.lastMeasured == nil {
			return nil // no reading yet
		}
		c.add(*s.lastMeasured)
		for _, kind := range excursionKinds {
			for _, a := range st.live[sensorID+"/"+kind] {
				c.add(a.exc.Start)
			}
		}
	}
	plan, err := evaluateAlarms(ctx, tx, &st, map[string]*sensorChange{sensorID: c})
	if err != nil {
		return err
	}
	b = &pgx.Batch{}
	plan.queue(b)
	if len(times) > 0 {
		b.Queue(`UPDATE sensors SET last_measured_at = greatest(last_measured_at, $2) WHERE id = $1`, sensorID, c.to)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write alarms: %w", err)
	}
	return nil
}
