package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.ReadingExport = (*ReadingStore)(nil)

// SensorSubject returns sensorID with its client's zone, for an export.
func (s *ReadingStore) SensorSubject(ctx context.Context, sensorID string) (tempwatch.ExportSubject, error) {
	if !tempwatch.IsUUID(sensorID) {
		return tempwatch.ExportSubject{}, tempwatch.NotFound("Sensor")
	}
	var sub tempwatch.ExportSubject
	var sn tempwatch.ExportSensor
	err := s.db.QueryRow(ctx, `SELECT s.id::text, s.device_id, s.name, s.client_id::text, c.timezone
		FROM sensors s JOIN clients c ON c.id = s.client_id WHERE s.id = $1`, sensorID).
		Scan(&sn.ID, &sn.DeviceID, &sn.Name, &sub.ClientID, &sub.Timezone)
	if err != nil {
		return tempwatch.ExportSubject{}, translate(err, "Sensor")
	}
	sub.Label, sub.Sensors = sn.DeviceID, []tempwatch.ExportSensor{sn}
	return sub, nil
}

// ClientSubject returns clientID with its sensors in device id order.
func (s *ReadingStore) ClientSubject(ctx context.Context, clientID string) (tempwatch.ExportSubject, error) {
	if !tempwatch.IsUUID(clientID) {
		return tempwatch.ExportSubject{}, tempwatch.NotFound("Client")
	}
	sub := tempwatch.ExportSubject{ClientID: clientID}
	err := s.db.QueryRow(ctx, `SELECT slug, timezone FROM clients WHERE id = $1`, clientID).Scan(&sub.Label, &sub.Timezone)
	if err != nil {
		return tempwatch.ExportSubject{}, translate(err, "Client")
	}
	rows, _ := s.db.Query(ctx, `SELECT id::text, device_id, name FROM sensors WHERE client_id = $1 ORDER BY device_id`, clientID)
	sub.Sensors, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (tempwatch.ExportSensor, error) {
		var sn tempwatch.ExportSensor
		err := row.Scan(&sn.ID, &sn.DeviceID, &sn.Name)
		return sn, err
	})
	if err != nil {
		return tempwatch.ExportSubject{}, fmt.Errorf("sensors of client: %w", err)
	}
	return sub, nil
}

// CountReadings sums the daily rollups of sub's sensors in sub's zone over
// the local days from's to to's: an upper bound of the readings in [from,
// to) read from one index row per sensor and day.
func (s *ReadingStore) CountReadings(ctx context.Context, sub tempwatch.ExportSubject, from, to time.Time) (int64, error) {
	ids := make([]string, len(sub.Sensors))
	for i, sn := range sub.Sensors {
		ids[i] = sn.ID
	}
	var n int64
	err := s.db.QueryRow(ctx, `SELECT coalesce(sum(count), 0)::bigint FROM reading_rollups_daily
		WHERE sensor_id = ANY($1::uuid[]) AND timezone = $2
		  AND day >= ($3::timestamptz AT TIME ZONE $2)::date AND day <= ($4::timestamptz AT TIME ZONE $2)::date`,
		ids, sub.Timezone, from, to).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count export readings: %w", err)
	}
	return n, nil
}

// EachReading streams the readings of sensorID measured in [from, to) along
// UNIQUE (sensor_id, measured_at): one query whose rows are decoded and
// handed to fn one at a time as pgx reads them off the connection, so
// memory does not grow with the row count. A cancelled ctx makes pgx
// cancel the query on the server.
func (s *ReadingStore) EachReading(ctx context.Context, sensorID string, from, to time.Time, fn func(time.Time, float64) error) error {
	if !tempwatch.IsUUID(sensorID) {
		return tempwatch.NotFound("Sensor")
	}
	// Cancelled when fn fails, so the query stops on the server: Close on
	// its own would read (and drop) every row still to come.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := s.db.Query(ctx, `SELECT measured_at, value FROM readings
		WHERE sensor_id = $1 AND measured_at >= $2 AND measured_at < $3 ORDER BY measured_at`, sensorID, from, to)
	if err != nil {
		return fmt.Errorf("export readings: %w", err)
	}
	defer rows.Close()
	var (
		at  time.Time
		v   float64
		dst = []any{&at, &v} // one slice for every row: no garbage per row
	)
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return fmt.Errorf("export readings: %w", err)
		}
		if err := fn(at, v); err != nil {
			cancel()
			rows.Close()
			return err
		}
	}
	if err := rows.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("export readings: %w", err)
	}
	return nil
}
