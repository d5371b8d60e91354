package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

const readingColumns = `id, sensor_id, value, measured_at, created_at, seq`

func scanReading(row pgx.CollectableRow) (tempwatch.Reading, error) {
	var r tempwatch.Reading
	err := row.Scan(&r.ID, &r.SensorID, &r.Value, &r.MeasuredAt, &r.CreatedAt, &r.Seq)
	return r, err
}

// FindSensorOwner returns the client of sensorID and its time zone.
func (s *ReadingStore) FindSensorOwner(ctx context.Context, sensorID string) (tempwatch.SensorOwner, error) {
	o := tempwatch.SensorOwner{SensorID: sensorID}
	if !tempwatch.IsUUID(sensorID) {
		return o, tempwatch.NotFound("Sensor")
	}
	err := s.db.QueryRow(ctx, `SELECT s.client_id, c.timezone FROM sensors s JOIN clients c ON c.id = s.client_id
		WHERE s.id = $1`, sensorID).Scan(&o.ClientID, &o.Timezone)
	return o, translate(err, "Sensor")
}

// FindClientTimezone returns the time zone of clientID.
func (s *ReadingStore) FindClientTimezone(ctx context.Context, clientID string) (string, error) {
	if !tempwatch.IsUUID(clientID) {
		return "", tempwatch.NotFound("Client")
	}
	var tz string
	err := s.db.QueryRow(ctx, `SELECT timezone FROM clients WHERE id = $1`, clientID).Scan(&tz)
	return tz, translate(err, "Client")
}

// SensorIDsOfClient returns the ids of every sensor of clientID, in id order.
func (s *ReadingStore) SensorIDsOfClient(ctx context.Context, clientID string) ([]string, error) {
	rows, _ := s.db.Query(ctx, `SELECT id::text FROM sensors WHERE client_id = $1 ORDER BY id`, clientID)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("sensors of client: %w", err)
	}
	return ids, nil
}

// FindReadings returns up to f.Page.Limit+1 readings of f.SensorID, newest
// created first, read along the readings_page index: a deep page costs what
// the first one does.
func (s *ReadingStore) FindReadings(ctx context.Context, f tempwatch.ReadingFilter) ([]tempwatch.Reading, error) {
	q := newListQuery(`SELECT ` + readingColumns + ` FROM readings`)
	q.numericID = true
	q.and(`sensor_id = ` + q.arg(f.SensorID))
	if !f.From.IsZero() {
		q.and(`measured_at >= ` + q.arg(f.From))
	}
	if !f.To.IsZero() {
		q.and(`measured_at < ` + q.arg(f.To))
	}
	return collect(ctx, s.db, q, f.Page, scanReading, "readings")
}

// LatestReadings returns, for each of sensorIDs that has readings, the one
// with the newest measured_at (one backward step of UNIQUE(sensor_id,
// measured_at) per sensor). Ids that are not UUIDs are skipped.
func (s *ReadingStore) LatestReadings(ctx context.Context, sensorIDs []string) (map[string]tempwatch.Reading, error) {
	ids := make([]string, 0, len(sensorIDs))
	for _, id := range sensorIDs {
		if tempwatch.IsUUID(id) {
			ids = append(ids, id)
		}
	}
	out := make(map[string]tempwatch.Reading, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, _ := s.db.Query(ctx, `SELECT r.id, r.sensor_id, r.value, r.measured_at, r.created_at, r.seq
		FROM unnest($1::uuid[]) AS want(id)
		CROSS JOIN LATERAL (
			SELECT `+readingColumns+` FROM readings WHERE sensor_id = want.id ORDER BY measured_at DESC LIMIT 1
		) r`, ids)
	rs, err := pgx.CollectRows(rows, scanReading)
	if err != nil {
		return nil, fmt.Errorf("latest readings: %w", err)
	}
	for _, r := range rs {
		out[r.SensorID] = r
	}
	return out, nil
}
