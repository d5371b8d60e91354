package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var (
	_ tempwatch.ReadingWriter  = (*ReadingStore)(nil)
	_ tempwatch.ReadingQuery   = (*ReadingStore)(nil)
	_ tempwatch.ReadingService = (*ReadingStore)(nil)
)

// ReadingStore keeps readings, the one large table, and their rollups: the
// ingest write path (WriteReadings, below), the read side (pages, latest
// readings, daily averages: readings_query.go, rollups.go) and the
// corrections of single readings (reading_service.go).
type ReadingStore struct {
	db  *pgxpool.Pool
	now func() time.Time
	// referenceSQL, when set, writes batches with this statement alone, as
	// before alarms and the rollups' limit and MKT columns existed: the
	// benchmark's reference only (export_test.go).
	referenceSQL string
}

// NewReadingStore returns a ReadingStore over db.
func NewReadingStore(db *pgxpool.Pool) *ReadingStore { return &ReadingStore{db: db, now: time.Now} }

// writeReadingsSQL inserts the batch, skipping rows whose (sensor_id,
// measured_at) exists, and folds exactly the inserted rows into
// reading_rollups, all in one statement (one round trip, one transaction).
// Input rows are unique by key (the caller removes in-batch duplicates) and
// sorted, and rollup rows are upserted in key order, so concurrent batches
// take row locks in the same order and do not deadlock.
const writeReadingsSQL = `
WITH input AS (
	SELECT * FROM unnest($1::int[], $2::uuid[], $3::float8[], $4::timestamptz[], $5::bigint[])
		AS t(idx, sensor_id, value, measured_at, seq)
), ins AS (
	INSERT INTO readings (sensor_id, value, measured_at, seq)
	SELECT sensor_id, value, measured_at, seq FROM input ORDER BY sensor_id, measured_at
	ON CONFLICT (sensor_id, measured_at) DO NOTHING
	RETURNING id, sensor_id, value, measured_at, created_at
), rollup AS (
	INSERT INTO reading_rollups AS r (sensor_id, bucket_start, count, sum, min, max, first_at, last_at, mkt_sum)
	SELECT sensor_id, rollup_bucket(measured_at), count(*), sum(value), min(value), max(value), min(measured_at), max(measured_at),
		sum(mkt_term(value))
	FROM ins GROUP BY 1, 2 ORDER BY 1, 2
	ON CONFLICT (sensor_id, bucket_start) DO UPDATE SET
		count = r.count + excluded.count,
		sum = r.sum + excluded.sum,
		min = least(r.min, excluded.min),
		max = greatest(r.max, excluded.max),
		first_at = least(r.first_at, excluded.first_at),
		last_at = greatest(r.last_at, excluded.last_at),
		mkt_sum = r.mkt_sum + excluded.mkt_sum
)
SELECT input.idx, ins.id, ins.created_at FROM input JOIN ins USING (sensor_id, measured_at)`

// appendReadingsSQL is writeReadingsSQL for ingest with alarms
// (writeEvaluated), checking that a batch its lock found appending to
// every sensor inserted every reading (ingest_appended, migration 012).
// The check is a branch of its own, with no FROM: run once, whatever the
// write returns (in the WHERE of the join it would run per row, so never
// for a batch that inserted nothing).
const appendReadingsSQL = writeReadingsSQL + `
UNION ALL
SELECT NULL, NULL, NULL WHERE NOT ingest_appended((SELECT count(*) FROM ins), (SELECT count(*) FROM input))`

// readingsConflict tells ingest_appended's error: a batch that appends
// met a stored reading.
func readingsConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "TWA01"
}

// existingReadingsSQL finds the stored rows of duplicates, so their raw
// payloads can still be linked. Only run when a batch had duplicates.
const existingReadingsSQL = `
SELECT want.idx, r.id, r.created_at
FROM unnest($1::int[], $2::uuid[], $3::timestamptz[]) AS want(idx, sensor_id, measured_at)
JOIN readings r ON r.sensor_id = want.sensor_id AND r.measured_at = want.measured_at`

// batchArrays are a batch as its statements take it: writeReadingsSQL's
// arrays, an entry per reading, and the batch's sensors, an entry per
// sensor (its id, its key, the time of its first reading).
type batchArrays struct {
	idx        []int32
	sensors    [][16]byte
	values     []float64
	times      []time.Time
	seqs       []*int64
	sensorIDs  []string
	sensorKeys [][16]byte
	firsts     []time.Time
}

func (a *batchArrays) writeArgs() []any { return []any{a.idx, a.sensors, a.values, a.times, a.seqs} }

// binaryUUIDs returns ids as a uuid[] parameter goes in binary, [16]byte
// each. From strings pgx first fails a binary encoding, formatting the
// error, then sends text for PostgreSQL to parse: a cost of every such
// array of every batch's alarm statements. Should one not be a UUID, ids go
// as they are, for PostgreSQL to refuse as before.
func binaryUUIDs(ids []string) any {
	keys := make([][16]byte, len(ids))
	for i, id := range ids {
		var ok bool
		if keys[i], ok = parseUUID(id); !ok {
			return ids
		}
	}
	return keys
}

// parseUUID parses id in its canonical form, as PostgreSQL's uuid takes it
// from ingest (pgtype skips the four separators unread: checked here).
func parseUUID(id string) ([16]byte, bool) {
	var u pgtype.UUID
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' || u.Scan(id) != nil {
		return [16]byte{}, false
	}
	return u.Bytes, true
}

// WriteReadings stores rs, which must be unique by (SensorID, MeasuredAt at
// microsecond precision). A deadlock or serialization failure is retried
// once; a batch that only appends but met a stored reading is written
// again the general way (writeEvaluated), and one whose limit-rollup
// deltas met rows they would take below zero, again with those rollups
// rebuilt from the readings (both after SQL by hand; the rebuild covers
// every sensor of the batch that has a limit); other errors are returned
// as they are, the batch unwritten.
func (s *ReadingStore) WriteReadings(ctx context.Context, rs []tempwatch.Reading) ([]tempwatch.WriteResult, error) {
	results := make([]tempwatch.WriteResult, len(rs))
	if len(rs) == 0 {
		return results, nil
	}
	a := &batchArrays{idx: make([]int32, len(rs)), sensors: make([][16]byte, len(rs)), values: make([]float64, len(rs)),
		times: make([]time.Time, len(rs)), seqs: make([]*int64, len(rs))}
	// uuid[] goes in binary from [16]byte; from strings pgx would first
	// fail a binary encoding (formatting the error), then send text for
	// PostgreSQL to parse. Parsed once per sensor: a batch holds many
	// readings of each.
	type batchSensor struct {
		key   [16]byte
		first time.Time // its first reading of the batch: appending or not (lock, deltas)
	}
	bySensor := map[string]*batchSensor{}
	for i, r := range rs {
		at := r.MeasuredAt.Truncate(time.Microsecond) // as PostgreSQL stores it, and compares it
		bs := bySensor[r.SensorID]
		if bs == nil {
			key, ok := parseUUID(r.SensorID)
			if !ok { // what PostgreSQL's 22P02 would have become
				return nil, fmt.Errorf("insert readings batch: %w", tempwatch.Errorf(tempwatch.EINVALID, "Reading has an invalid value."))
			}
			bs = &batchSensor{key: key, first: at}
			bySensor[r.SensorID] = bs
		} else if at.Before(bs.first) {
			bs.first = at
		}
		a.idx[i], a.sensors[i], a.values[i], a.times[i], a.seqs[i] = int32(i), bs.key, r.Value, r.MeasuredAt, r.Seq
	}
	for id, bs := range bySensor {
		a.sensorIDs, a.sensorKeys, a.firsts = append(a.sensorIDs, id), append(a.sensorKeys, bs.key), append(a.firsts, bs.first)
	}
	var inserted int
	var opened map[string]int // alarms opened by kind, counted once committed
	appending, deltas, retried := true, true, false
	for {
		clear(results) // of a failed attempt
		var err error
		if s.referenceSQL != "" {
			inserted, err = s.scanIDs(ctx, results, true, s.referenceSQL, a.writeArgs()...)
		} else {
			inserted, opened, err = s.writeEvaluated(ctx, rs, results, a, appending, deltas)
		}
		if err == nil {
			break
		}
		if appending && readingsConflict(err) {
			appending = false // a stored reading the sensor's newest did not tell of: SQL by hand
			continue
		}
		if deltas && limitRollupsInexact(err) {
			deltas = false // limit rollups not what the readings say (SQL by hand): rebuilt by the write
			continue
		}
		if !retried && retryable(err) {
			retried = true
			continue
		}
		return nil, fmt.Errorf("insert readings batch: %w", translate(err, "Reading"))
	}
	for kind, n := range opened {
		metrics.Add(ctx, metrics.AlarmsOpened, float64(n), kind)
	}
	if inserted == len(rs) {
		return results, nil
	}
	var dIdx []int32
	var dSensors [][16]byte
	var dTimes []time.Time
	for i, r := range results {
		if !r.Inserted {
			dIdx, dSensors, dTimes = append(dIdx, int32(i)), append(dSensors, a.sensors[i]), append(dTimes, a.times[i])
		}
	}
	// The batch is stored whatever this lookup does; on error the duplicates
	// keep ReadingID 0 (their raw payloads go unlinked).
	_, _ = s.scanIDs(ctx, results, false, existingReadingsSQL, dIdx, dSensors, dTimes)
	return results, nil
}

// scanIDs runs sql and records each returned (idx, id) in results.
func (s *ReadingStore) scanIDs(ctx context.Context, results []tempwatch.WriteResult, inserted bool, sql string, args ...any) (int, error) {
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	return scanIDRows(rows, results, inserted)
}

// scanIDRows records each (idx, id) of rows in results.
func scanIDRows(rows pgx.Rows, results []tempwatch.WriteResult, inserted bool) (int, error) {
	defer rows.Close()
	n := 0
	var i int32
	var id int64
	var created time.Time
	_, err := pgx.ForEachRow(rows, []any{&i, &id, &created}, func() error {
		results[i] = tempwatch.WriteResult{ReadingID: id, CreatedAt: created, Inserted: inserted}
		n++
		return nil
	})
	return n, err
}

// rollbackTimeout bounds the rollback of a failed batch, which must not
// wait on a server that stopped answering.
const rollbackTimeout = 5 * time.Second

// writeEvaluated writes the batch and its alarms in one transaction, in
// one pipeline: BEGIN, the lock (see alarm_eval.go), which also names the
// sensors whose limit rollups take deltas, their newest readings and the
// live excursions go first, on their own, so the server works through them
// while this side encodes the write; their results come back while the
// server goes on to the write. The writes after it are planned as key
// lookups (keyLookupPlansSQL).
// When the batch only appends to every sensor (the usual case; appending
// false turns this off), its evaluation needs nothing of the write: the
// alarm writes, the deltas, the last-seen update and COMMIT follow the
// write in the same pipeline, and the server works through them without
// waiting for this side. Should the write then insert fewer readings than
// the batch holds, it fails (appendReadingsSQL), and the server skips the
// rest, COMMIT too. Any other batch reads the write's results, and late
// readings their windows, before it sends the rest. With deltas false,
// no sensor's limit rollups take deltas: the write's triggers rebuild
// them. A transaction that did not commit is rolled back before the
// connection goes back to the pool.
func (s *ReadingStore) writeEvaluated(ctx context.Context, rs []tempwatch.Reading, results []tempwatch.WriteResult,
	a *batchArrays, appending, deltas bool) (inserted int, opened map[string]int, err error) {
	conn, err := s.db.Acquire(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Release()
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		if conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = conn.Exec(rctx, "ROLLBACK") // if it fails, the pool drops the connection
		}
		if staleStatement(err) {
			// A migration changed what a statement prepared on this
			// connection returns: prepared anew at the next use.
			_ = conn.Conn().DeallocateAll(rctx)
		}
	}()
	var st alarmState
	head := &pgx.Batch{}
	head.Queue("BEGIN")
	appends := queueIngestState(head, a, appending, deltas, &st)
	write := &pgx.Batch{}
	write.Queue(appendReadingsSQL, a.writeArgs()...).Query(func(rows pgx.Rows) (err error) {
		inserted, err = scanIDRows(rows, results, true)
		return err
	})
	pc := conn.Conn()
	if err := prepare(ctx, pc, slices.Concat(statements(head), statements(write), ingestTailSQL)...); err != nil {
		return 0, nil, err
	}
	pl := startPipeline(ctx, pc)
	defer func() {
		if cerr := pl.close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if err := pl.send(ctx, head); err != nil {
		return 0, nil, err
	}
	pl.askResults()
	if err := pl.flush(); err != nil {
		return 0, nil, err
	}
	if err := pl.send(ctx, write); err != nil {
		return 0, nil, err
	}
	if err := pl.flush(); err != nil {
		return 0, nil, err
	}
	if err := pl.read(head.Len()); err != nil {
		return 0, nil, err
	}
	committed := false // the rest sent behind the write
	if appending && onlyAppends(&st, a) {
		all := make([]tempwatch.WriteResult, len(rs))
		for i := range all {
			all[i].Inserted = true
		}
		b, o, err := evaluateBatch(ctx, noQueries{}, &st, appends, rs, all)
		if err != nil {
			return 0, nil, err
		}
		b.Queue("COMMIT")
		switch err := pl.send(ctx, b); {
		case err == nil:
			committed, opened = true, o
		case !errors.Is(err, errNotPrepared):
			return 0, nil, err
		}
	}
	if err := pl.sync(); err != nil {
		return 0, nil, err
	}
	if err := pl.read(len(pl.queued)); err != nil {
		return 0, nil, err
	}
	if err := pl.close(); err != nil {
		return 0, nil, err
	}
	if committed {
		return inserted, opened, nil
	}
	b, opened, err := evaluateBatch(ctx, conn, &st, appends, rs, results)
	if err != nil {
		return 0, nil, err
	}
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return 0, nil, fmt.Errorf("write alarms: %w", err)
	}
	return inserted, opened, nil
}

// ingestTailSQL are the statements a batch that only appends may send
// behind its write (evaluateBatch), prepared before its pipeline starts.
// One missing here would send such batches the general way
// (errNotPrepared), slower but the same.
var ingestTailSQL = []string{keyLookupPlansSQL, deleteAlarmsSQL, withdrawAlarmsSQL, updateAlarmsSQL, insertAlarmsSQL,
	insertEventsSQL, deltasBeginSQL, deltasSQL, markSeenSQL, clearSilencesSQL, "COMMIT"}

// keyLookupPlansSQL has the rest of an ingest transaction, the writes that
// evaluation queues, planned as what they are: a batch's few rows looked up
// by key (alarms by id or by sensor and kind, sensors by id, limit rollups
// by sensor and bucket, days by sensor, zone and day; so are the foreign
// keys, cascades and the webhook fan-out they fire), whatever the tables'
// statistics say. On a table that looked small when a connection first
// planned a statement (a new deployment, or statistics not yet gathered),
// PostgreSQL chose a hash join over a full scan, and kept that generic plan
// as the table grew, until an ANALYZE: 0.17 ms per batch for the alarm
// update at 1,300 alarms and 0.18 ms for the deltas at 2,100 limit
// rollups, growing on. Generic plans throughout, made once per connection
// (custom plans were made anew at every call, planning costing as much as
// the statement). Transaction-local: only these writes and COMMIT follow.
// A process that also corrects readings on the same pool
// (reevaluateSensor) may plan the same statements first, without these
// settings, and ingest then keeps that plan; deployed, ingest is a
// function of its own.
const keyLookupPlansSQL = `
SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true),
	set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`

// onlyAppends tells whether every sensor of batch a is locked in st and
// has the batch's readings all after its newest.
func onlyAppends(st *alarmState, a *batchArrays) bool {
	for i, id := range a.sensorIDs {
		s := st.sensors[id]
		if s == nil || (s.lastMeasured != nil && !a.firsts[i].After(*s.lastMeasured)) {
			return false
		}
	}
	return true
}

// noQueries is evaluation's querier where it must read nothing.
type noQueries struct{}

func (noQueries) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errors.New("evaluation read in the pipeline")
}

func (noQueries) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults {
	panic("evaluation wrote in the pipeline")
}

// evaluateBatch evaluates the alarms of the sensors the batch inserted
// readings of. It returns the writes that record them, with the limit
// rollups' deltas of the appending sensors (appends), when each sensor was
// last seen and the end of the silences it broke, and how many alarms it
// opened, by kind.
func evaluateBatch(ctx context.Context, q querier, st *alarmState, appends map[string]*limitAppend, rs []tempwatch.Reading,
	results []tempwatch.WriteResult) (*pgx.Batch, map[string]int, error) {
	b := &pgx.Batch{}
	changes := map[string]*sensorChange{}
	for i, r := range results {
		if !r.Inserted {
			continue
		}
		c := changes[rs[i].SensorID]
		if c == nil {
			c = &sensorChange{}
			changes[rs[i].SensorID] = c
		}
		c.add(rs[i].MeasuredAt)
		c.inserted = append(c.inserted, tempwatch.Sample{At: rs[i].MeasuredAt, Value: rs[i].Value})
	}
	if len(changes) == 0 {
		return b, nil, nil
	}
	ids := make([]string, 0, len(changes))
	newest := make([]time.Time, 0, len(changes))
	var silent []string // the sensors whose silence the batch ends
	for id, c := range changes {
		slices.SortFunc(c.inserted, func(a, b tempwatch.Sample) int { return a.At.Compare(b.At) })
		ids, newest = append(ids, id), append(newest, c.to)
		if st.silent[id] {
			silent = append(silent, id)
		}
	}
	plan, err := evaluateAlarms(ctx, q, st, changes)
	if err != nil {
		return nil, nil, err
	}
	b.Queue(keyLookupPlansSQL)
	plan.queue(b)
	b.Queue(markSeenSQL, binaryUUIDs(ids), newest)
	if len(silent) > 0 {
		b.Queue(clearSilencesSQL, binaryUUIDs(silent))
	}
	if len(appends) > 0 {
		deltas := limitDeltas{}
		for id, a := range appends {
			c, s := changes[id], st.sensors[id]
			if c == nil || s == nil { // its rebuild was left to deltas: never leave it undone
				return nil, nil, fmt.Errorf("limit rollups: sensor %s appends nothing", id)
			}
			deltas.addBatch(s, a, c.inserted)
		}
		deltas.queue(b)
	}
	return b, plan.opened(), nil
}

// retryable tells a deadlock or serialization failure, which a retry of the
// same statement may not meet again, and a stale prepared statement
// (staleStatement), which writeEvaluated drops.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") || staleStatement(err)
}

// staleStatement tells PostgreSQL's refusal of a prepared statement whose
// result type a schema change altered ("cached plan must not change
// result type"): pgx drops its own cached statements on it, not those
// prepared by name (pipeline.go).
func staleStatement(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "0A000"
}
