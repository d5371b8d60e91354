package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.MeasurementService = (*MeasurementStore)(nil)

// MeasurementStore keeps measurements (the rows of readings) in PostgreSQL
// and keeps reading_rollups exact on every write, by rebuilding each touched
// bucket with recompute_rollup in the write's transaction.
//
// Against concurrent ingest (incremental upserts of the same rollup rows)
// recompute_rollup is exact because it deletes the bucket's row first: an
// ingest that upserted it is waited for and then counted; one that upserts
// later waits for our commit and adds to our row. Its one failure mode, an
// ingest creating the bucket's row between our delete and insert, is a
// unique violation on reading_rollups, never a wrong sum: the transaction is
// then retried, as are deadlocks. Corrections of one sensor are serialised
// by a FOR NO KEY UPDATE lock on its row, which (unlike FOR UPDATE) does not
// block the FOR KEY SHARE that ingest's foreign key check takes, so ingest
// never waits for a correction's row lock on the sensor and cannot deadlock on it.
type MeasurementStore struct {
	db  *pgxpool.Pool
	now func() time.Time
}

// NewMeasurementStore returns a MeasurementStore over db.
func NewMeasurementStore(db *pgxpool.Pool) *MeasurementStore {
	return &MeasurementStore{db: db, now: time.Now}
}

const measurementColumns = `r.id, r.sensor_id, r.value, r.measured_at, r.created_at, s.client_id`

func scanMeasurement(row pgx.CollectableRow) (*tempwatch.Measurement, error) {
	var m tempwatch.Measurement
	err := row.Scan(&m.ID, &m.SensorID, &m.Value, &m.MeasuredAt, &m.CreatedAt, &m.ClientID)
	return &m, err
}

func measurementNotFound() error {
	return tempwatch.Errorf(tempwatch.ENOTFOUND, "Measurement not found.")
}

// parseMeasurementID returns the bigint id, or ENOTFOUND for anything else.
func parseMeasurementID(id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, measurementNotFound()
	}
	return n, nil
}

// translateMeasurement names the natural-key clash before the generic translation.
func translateMeasurement(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return &tempwatch.Error{Code: tempwatch.ECONFLICT,
			Message: "The sensor already has a measurement at this measured_at.",
			Fields:  map[string]string{"measured_at": "already has a measurement for this sensor"}}
	}
	return translate(err, "Measurement")
}

// writeAttempts bounds the retries of a write transaction (see MeasurementStore).
const writeAttempts = 4

// inTx runs fn in a transaction, again when it failed for a reason a retry
// cures: a deadlock, a serialization failure, or the rollup row race.
func (s *MeasurementStore) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for range writeAttempts {
		if err = pgx.BeginFunc(ctx, s.db, fn); err == nil || (!retryable(err) && !rollupRace(err)) {
			return err
		}
	}
	return err
}

// rollupRace reports whether err is recompute_rollup's insert meeting a row
// an ingest created after the function's delete.
func rollupRace(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "reading_rollups_pkey"
}

// lockSensor returns the sensor, locked against other corrections until tx
// ends (see MeasurementStore).
func lockSensor(ctx context.Context, tx pgx.Tx, id string) (*tempwatch.Sensor, error) {
	if !tempwatch.IsUUID(id) {
		return nil, sensorNotFound()
	}
	rows, _ := tx.Query(ctx, `SELECT `+sensorColumns+` FROM sensors WHERE id = $1 FOR NO KEY UPDATE`, id)
	s, err := pgx.CollectExactlyOneRow(rows, scanSensor)
	return s, translate(err, "Sensor")
}

// recomputeRollups rebuilds the sensor's buckets holding each of times.
func recomputeRollups(ctx context.Context, tx pgx.Tx, sensorID string, times ...time.Time) error {
	_, err := tx.Exec(ctx, `SELECT recompute_rollup($1, b)
		FROM (SELECT DISTINCT rollup_bucket(t) AS b FROM unnest($2::timestamptz[]) AS t) buckets`, sensorID, times)
	if err != nil {
		return fmt.Errorf("recompute rollups: %w", err) // wrapped, so inTx still sees the driver error
	}
	return nil
}

// CreateMeasurement validates m against its sensor, inserts it and rebuilds
// its bucket, filling m's id, timestamps and client.
func (s *MeasurementStore) CreateMeasurement(ctx context.Context, m *tempwatch.Measurement) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		sensor, err := lockSensor(ctx, tx, m.SensorID)
		if err != nil {
			return err
		}
		if err := tempwatch.ValidateMeasurement(sensor, m.Value, m.MeasuredAt, s.now()); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO readings (sensor_id, value, measured_at) VALUES ($1, $2, $3)
			RETURNING id, measured_at, created_at`, m.SensorID, m.Value, m.MeasuredAt).Scan(&m.ID, &m.MeasuredAt, &m.CreatedAt)
		if err != nil {
			return translateMeasurement(err)
		}
		m.ClientID = sensor.ClientID
		return recomputeRollups(ctx, tx, m.SensorID, m.MeasuredAt)
	})
}

// FindMeasurementByID returns the measurement with id, or ENOTFOUND.
func (s *MeasurementStore) FindMeasurementByID(ctx context.Context, id string) (*tempwatch.Measurement, error) {
	n, err := parseMeasurementID(id)
	if err != nil {
		return nil, err
	}
	rows, _ := s.db.Query(ctx, `SELECT `+measurementColumns+`
		FROM readings r JOIN sensors s ON s.id = r.sensor_id WHERE r.id = $1`, n)
	m, err := pgx.CollectExactlyOneRow(rows, scanMeasurement)
	return m, translate(err, "Measurement")
}

// FindMeasurements returns up to f.Page.Limit+1 measurements of f.SensorID,
// newest first by created_at then id, on the readings_page index.
func (s *MeasurementStore) FindMeasurements(ctx context.Context, f tempwatch.MeasurementFilter) ([]*tempwatch.Measurement, error) {
	if !tempwatch.IsUUID(f.SensorID) {
		return []*tempwatch.Measurement{}, nil
	}
	q := newListQuery(`SELECT ` + measurementColumns + ` FROM readings r JOIN sensors s ON s.id = r.sensor_id`)
	q.alias, q.numericID = "r.", true
	q.and(`r.sensor_id = ` + q.arg(f.SensorID))
	if f.From != nil {
		q.and(`r.measured_at >= ` + q.arg(*f.From))
	}
	if f.To != nil {
		q.and(`r.measured_at < ` + q.arg(*f.To))
	}
	return collect(ctx, s.db, q, f.Page, scanMeasurement, "measurements")
}

// lockMeasurement returns the measurement with id after locking its sensor
// and then the row itself.
func lockMeasurement(ctx context.Context, tx pgx.Tx, id string) (*tempwatch.Measurement, *tempwatch.Sensor, error) {
	n, err := parseMeasurementID(id)
	if err != nil {
		return nil, nil, err
	}
	var sensorID string
	if err := tx.QueryRow(ctx, `SELECT sensor_id FROM readings WHERE id = $1`, n).Scan(&sensorID); err != nil {
		return nil, nil, translate(err, "Measurement")
	}
	sensor, err := lockSensor(ctx, tx, sensorID)
	if tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND {
		return nil, nil, measurementNotFound() // deleted with its sensor meanwhile
	} else if err != nil {
		return nil, nil, err
	}
	rows, _ := tx.Query(ctx, `SELECT `+measurementColumns+`
		FROM readings r JOIN sensors s ON s.id = r.sensor_id WHERE r.id = $1 FOR UPDATE OF r`, n)
	m, err := pgx.CollectExactlyOneRow(rows, scanMeasurement)
	if err != nil {
		return nil, nil, translate(err, "Measurement")
	}
	return m, sensor, nil
}

// UpdateMeasurement corrects the value and/or measured_at of a measurement
// and rebuilds the buckets of both its old and new measured_at.
func (s *MeasurementStore) UpdateMeasurement(ctx context.Context, id string, upd tempwatch.MeasurementUpdate) (*tempwatch.Measurement, error) {
	var out *tempwatch.Measurement
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, sensor, err := lockMeasurement(ctx, tx, id)
		if err != nil {
			return err
		}
		next := *cur
		if upd.Value != nil {
			next.Value = *upd.Value
		}
		if upd.MeasuredAt != nil {
			next.MeasuredAt = *upd.MeasuredAt
		}
		if err := onlySetFields(tempwatch.ValidateMeasurement(sensor, next.Value, next.MeasuredAt, s.now()),
			upd.Value != nil, upd.MeasuredAt != nil); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `UPDATE readings r SET value = $2, measured_at = $3
			FROM sensors s WHERE s.id = r.sensor_id AND r.id = $1 RETURNING `+measurementColumns,
			cur.ID, next.Value, next.MeasuredAt)
		out, err = pgx.CollectExactlyOneRow(rows, scanMeasurement)
		if err != nil {
			return translateMeasurement(err)
		}
		return recomputeRollups(ctx, tx, cur.SensorID, cur.MeasuredAt, out.MeasuredAt)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// onlySetFields keeps the validation problems of the fields a correction
// sets: an old value outside a since-narrowed range must not block moving
// its measured_at.
func onlySetFields(err error, valueSet, measuredAtSet bool) error {
	fields := tempwatch.ErrorFields(err)
	if fields == nil {
		return err
	}
	v := tempwatch.Validation{}
	if msg, ok := fields["value"]; ok && valueSet {
		v.Add("value", msg)
	}
	if msg, ok := fields["measured_at"]; ok && measuredAtSet {
		v.Add("measured_at", msg)
	}
	return v.Err()
}

// DeleteMeasurement removes a measurement, rebuilds its bucket, and returns
// what was deleted (callers invalidate caches of its sensor).
func (s *MeasurementStore) DeleteMeasurement(ctx context.Context, id string) (*tempwatch.Measurement, error) {
	var out *tempwatch.Measurement
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, _, err := lockMeasurement(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM readings WHERE id = $1`, cur.ID); err != nil {
			return fmt.Errorf("delete measurement: %w", err)
		}
		out = cur
		return recomputeRollups(ctx, tx, cur.SensorID, cur.MeasuredAt)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
