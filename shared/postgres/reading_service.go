package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Corrections of single readings (the measurements API) keep
// reading_rollups exact by rebuilding each touched bucket with
// recompute_rollup in the write's transaction.
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

const readingWithClientColumns = `r.id, r.sensor_id, r.value, r.measured_at, r.created_at, r.seq, s.client_id`

func scanReadingWithClient(row pgx.CollectableRow) (*tempwatch.Reading, error) {
	var m tempwatch.Reading
	err := row.Scan(&m.ID, &m.SensorID, &m.Value, &m.MeasuredAt, &m.CreatedAt, &m.Seq, &m.ClientID)
	return &m, err
}

// parseMeasurementID returns the bigint id, or ENOTFOUND for anything else.
func parseMeasurementID(id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, tempwatch.NotFound("Measurement")
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

// writeAttempts bounds the retries of a write transaction (see the top of this file).
const writeAttempts = 4

// inTx runs fn in a transaction, again when it failed for a reason a retry
// cures: a deadlock, a serialization failure, or the rollup row race.
func (s *ReadingStore) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
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
// ends (see the top of this file).
func lockSensor(ctx context.Context, tx pgx.Tx, id string) (*tempwatch.Sensor, error) {
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.NotFound("Sensor")
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

// CreateReading validates m against its sensor, inserts it and rebuilds
// its bucket, filling m's id, timestamps and client.
func (s *ReadingStore) CreateReading(ctx context.Context, m *tempwatch.Reading) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		sensor, err := lockSensor(ctx, tx, m.SensorID)
		if err != nil {
			return err
		}
		if err := tempwatch.ValidateReading(sensor, m.Value, m.MeasuredAt, s.now()); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO readings (sensor_id, value, measured_at) VALUES ($1, $2, $3)
			RETURNING id, measured_at, created_at`, m.SensorID, m.Value, m.MeasuredAt).Scan(&m.ID, &m.MeasuredAt, &m.CreatedAt)
		if err != nil {
			return translateMeasurement(err)
		}
		m.ClientID = sensor.ClientID
		if err := recordAudit(ctx, tx, measurementEvent(tempwatch.ActionCreate, nil, m)); err != nil {
			return err
		}
		if err := recomputeRollups(ctx, tx, m.SensorID, m.MeasuredAt); err != nil {
			return err
		}
		return reevaluateSensor(ctx, tx, m.SensorID, false, m.MeasuredAt)
	})
}

// FindReadingByID returns the measurement with id, or ENOTFOUND.
func (s *ReadingStore) FindReadingByID(ctx context.Context, id string) (*tempwatch.Reading, error) {
	n, err := parseMeasurementID(id)
	if err != nil {
		return nil, err
	}
	rows, _ := s.db.Query(ctx, `SELECT `+readingWithClientColumns+`
		FROM readings r JOIN sensors s ON s.id = r.sensor_id WHERE r.id = $1`, n)
	m, err := pgx.CollectExactlyOneRow(rows, scanReadingWithClient)
	return m, translate(err, "Measurement")
}

// lockMeasurement returns the measurement with id after locking its sensor
// and then the row itself.
func lockMeasurement(ctx context.Context, tx pgx.Tx, id string) (*tempwatch.Reading, *tempwatch.Sensor, error) {
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
		return nil, nil, tempwatch.NotFound("Measurement") // deleted with its sensor meanwhile
	} else if err != nil {
		return nil, nil, err
	}
	rows, _ := tx.Query(ctx, `SELECT `+readingWithClientColumns+`
		FROM readings r JOIN sensors s ON s.id = r.sensor_id WHERE r.id = $1 FOR UPDATE OF r`, n)
	m, err := pgx.CollectExactlyOneRow(rows, scanReadingWithClient)
	if err != nil {
		return nil, nil, translate(err, "Measurement")
	}
	return m, sensor, nil
}

// UpdateReading corrects the value and/or measured_at of a measurement
// and rebuilds the buckets of both its old and new measured_at.
func (s *ReadingStore) UpdateReading(ctx context.Context, id string, upd tempwatch.ReadingUpdate) (*tempwatch.Reading, error) {
	var out *tempwatch.Reading
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
		if err := onlySetFields(tempwatch.ValidateReading(sensor, next.Value, next.MeasuredAt, s.now()),
			upd.Value != nil, upd.MeasuredAt != nil); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `UPDATE readings r SET value = $2, measured_at = $3
			FROM sensors s WHERE s.id = r.sensor_id AND r.id = $1 RETURNING `+readingWithClientColumns,
			cur.ID, next.Value, next.MeasuredAt)
		out, err = pgx.CollectExactlyOneRow(rows, scanReadingWithClient)
		if err != nil {
			return translateMeasurement(err)
		}
		if err := recordAudit(ctx, tx, measurementEvent(tempwatch.ActionUpdate, cur, out)); err != nil {
			return err
		}
		if err := recomputeRollups(ctx, tx, cur.SensorID, cur.MeasuredAt, out.MeasuredAt); err != nil {
			return err
		}
		return reevaluateSensor(ctx, tx, cur.SensorID, false, cur.MeasuredAt, out.MeasuredAt)
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

// DeleteReading removes a measurement, rebuilds its bucket, and returns
// what was deleted (callers invalidate caches of its sensor).
func (s *ReadingStore) DeleteReading(ctx context.Context, id string) (*tempwatch.Reading, error) {
	var out *tempwatch.Reading
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, _, err := lockMeasurement(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM readings WHERE id = $1`, cur.ID); err != nil {
			return fmt.Errorf("delete measurement: %w", err)
		}
		out = cur
		if err := recordAudit(ctx, tx, measurementEvent(tempwatch.ActionDelete, cur, nil)); err != nil {
			return err
		}
		if err := recomputeRollups(ctx, tx, cur.SensorID, cur.MeasuredAt); err != nil {
			return err
		}
		return reevaluateSensor(ctx, tx, cur.SensorID, false, cur.MeasuredAt)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
