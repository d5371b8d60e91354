package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.SensorService = (*SensorStore)(nil)

// SensorStore keeps sensors in PostgreSQL.
type SensorStore struct{ db *pgxpool.Pool }

// NewSensorStore returns a SensorStore over db.
func NewSensorStore(db *pgxpool.Pool) *SensorStore { return &SensorStore{db: db} }

// sensorColumns are a sensor's columns as tempwatch.Sensor holds them,
// intervals in whole seconds and its status computed (sensorStatus), so
// every read and every write's RETURNING shows the same sensor.
const sensorColumns = `id, client_id, device_id, name, location, unit, min_value, max_value,
	alert_low, alert_high, extract(epoch FROM alarm_delay)::bigint, alarm_hysteresis,
	extract(epoch FROM silence_after)::bigint, last_measured_at, last_received_at,
	` + sensorStatus + ` AS status, created_at, updated_at`

// sensorStatus is a sensor's tempwatch status, the most urgent first: a
// live high or low alarm; an open silent alarm, or no batch for longer than
// the threshold (before the sweep has opened its alarm); a batch within
// it; none ever. The alarm lookups are probes of the partial index
// alarms_live, in the statement that reads the sensor, so lists pay no
// round trip per sensor.
const sensorStatus = `CASE
		WHEN EXISTS (SELECT 1 FROM alarms a WHERE a.sensor_id = sensors.id AND a.state = 'open' AND a.kind <> 'silent')
			THEN 'in_alarm'
		WHEN EXISTS (SELECT 1 FROM alarms a WHERE a.sensor_id = sensors.id AND a.state = 'open' AND a.kind = 'silent')
			OR sensors.last_received_at + sensors.silence_after < now()
			THEN 'silent'
		WHEN sensors.last_received_at IS NOT NULL THEN 'online'
		ELSE 'unknown'
	END`

func scanSensor(row pgx.CollectableRow) (*tempwatch.Sensor, error) {
	var s tempwatch.Sensor
	err := row.Scan(sensorFields(&s)...)
	return &s, err
}

func sensorFields(s *tempwatch.Sensor) []any {
	return []any{&s.ID, &s.ClientID, &s.DeviceID, &s.Name, &s.Location, &s.Unit, &s.MinValue, &s.MaxValue,
		&s.AlertLow, &s.AlertHigh, &s.AlarmDelaySeconds, &s.AlarmHysteresis, &s.SilenceAfterSeconds,
		&s.LastMeasuredAt, &s.LastReceivedAt, &s.Status, &s.CreatedAt, &s.UpdatedAt}
}

// withDeviceRef wraps a write that returns sensorColumns (a data-modifying
// CTE named s) to return the device's ref too: its client's slug, which
// only the writes that issue a key need.
func withDeviceRef(write string) string {
	return `WITH s AS (` + write + `) SELECT s.*, c.slug FROM s JOIN clients c ON c.id = s.client_id`
}

// scanSensorRef reads a row of withDeviceRef.
func scanSensorRef(rows pgx.Rows) (*tempwatch.Sensor, tempwatch.DeviceRef, error) {
	var slug string
	sn, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (*tempwatch.Sensor, error) {
		var s tempwatch.Sensor
		return &s, row.Scan(append(sensorFields(&s), &slug)...)
	})
	if err != nil {
		return nil, tempwatch.DeviceRef{}, translate(err, "Sensor")
	}
	return sn, tempwatch.DeviceRef{ClientSlug: slug, DeviceID: sn.DeviceID}, nil
}

// CreateSensor inserts s with the given device key hash, fills its id and
// timestamps, and returns its device's ref.
func (s *SensorStore) CreateSensor(ctx context.Context, sn *tempwatch.Sensor, keyHash []byte) (tempwatch.DeviceRef, error) {
	if err := sn.Validate(); err != nil {
		return tempwatch.DeviceRef{}, err
	}
	var ref tempwatch.DeviceRef
	err := audited(ctx, s.db, func(tx pgx.Tx) (*tempwatch.AuditEvent, error) {
		rows, _ := tx.Query(ctx, withDeviceRef(`INSERT INTO sensors
				(client_id, device_id, name, location, unit, min_value, max_value, alert_low, alert_high, device_key_hash,
				alarm_delay, alarm_hysteresis, silence_after)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, `+seconds("$11")+`, $12, `+seconds("$13")+`) RETURNING `+sensorColumns),
			sn.ClientID, sn.DeviceID, sn.Name, sn.Location, sn.Unit, sn.MinValue, sn.MaxValue, sn.AlertLow, sn.AlertHigh, keyHash,
			sn.AlarmDelaySeconds, sn.AlarmHysteresis, sn.SilenceAfterSeconds)
		created, r, err := scanSensorRef(rows)
		if err != nil {
			return nil, err
		}
		*sn, ref = *created, r
		return sensorEvent(tempwatch.ActionCreate, nil, sn), nil
	})
	return ref, err
}

// FindSensorByID returns the sensor with id, or ENOTFOUND.
func (s *SensorStore) FindSensorByID(ctx context.Context, id string) (*tempwatch.Sensor, error) {
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.NotFound("Sensor")
	}
	rows, _ := s.db.Query(ctx, `SELECT `+sensorColumns+` FROM sensors WHERE id = $1`, id)
	sn, err := pgx.CollectExactlyOneRow(rows, scanSensor)
	return sn, translate(err, "Sensor")
}

// FindSensors returns up to f.Page.Limit+1 sensors, newest first.
func (s *SensorStore) FindSensors(ctx context.Context, f tempwatch.SensorFilter) ([]*tempwatch.Sensor, error) {
	q := newListQuery(`SELECT ` + sensorColumns + ` FROM sensors`)
	if f.ClientID != "" {
		if !tempwatch.IsUUID(f.ClientID) {
			return []*tempwatch.Sensor{}, nil
		}
		q.and(`client_id = ` + q.arg(f.ClientID))
	}
	if f.Name != "" {
		q.and(`name ILIKE '%' || ` + q.arg(escapeLike(f.Name)) + ` || '%'`)
	}
	if f.Status != "" {
		q.and(sensorStatus + ` = ` + q.arg(f.Status))
	}
	return collect(ctx, s.db, q, f.Page, scanSensor, "sensors")
}

// UpdateSensor applies upd and returns the stored sensor. The merged sensor
// is validated as a whole (a new min_value must stay below the stored
// max_value), under a row lock so two updates cannot each pass alone.
func (s *SensorStore) UpdateSensor(ctx context.Context, id string, upd tempwatch.SensorUpdate) (*tempwatch.Sensor, error) {
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.NotFound("Sensor")
	}
	var out *tempwatch.Sensor
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+sensorColumns+` FROM sensors WHERE id = $1 FOR UPDATE`, id)
		cur, err := pgx.CollectExactlyOneRow(rows, scanSensor)
		if err != nil {
			return translate(err, "Sensor")
		}
		next := upd.Apply(*cur)
		if err := next.Validate(); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `UPDATE sensors SET device_id = $2, name = $3, location = $4, unit = $5,
				min_value = $6, max_value = $7, alert_low = $8, alert_high = $9,
				alarm_delay = `+seconds("$10")+`, alarm_hysteresis = $11, silence_after = `+seconds("$12")+`, updated_at = now()
			WHERE id = $1 RETURNING `+sensorColumns,
			id, next.DeviceID, next.Name, next.Location, next.Unit, next.MinValue, next.MaxValue, next.AlertLow, next.AlertHigh,
			next.AlarmDelaySeconds, next.AlarmHysteresis, next.SilenceAfterSeconds)
		if out, err = pgx.CollectExactlyOneRow(rows, scanSensor); err != nil {
			return translate(err, "Sensor")
		}
		if alarmRuleChanged(cur, out) {
			if err := reevaluateSensor(ctx, tx, id, true); err != nil {
				return err
			}
		}
		return recordAudit(ctx, tx, sensorEvent(tempwatch.ActionUpdate, cur, out))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// alarmRuleChanged reports whether an update changed what alarms are
// evaluated by.
func alarmRuleChanged(a, b *tempwatch.Sensor) bool {
	eq := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return !eq(a.AlertLow, b.AlertLow) || !eq(a.AlertHigh, b.AlertHigh) ||
		a.AlarmDelaySeconds != b.AlarmDelaySeconds || a.AlarmHysteresis != b.AlarmHysteresis
}

// seconds is the interval of the whole seconds in parameter p.
func seconds(p string) string { return `make_interval(secs => ` + p + `::bigint)` }

// DeleteSensor removes the sensor and, by cascade, its readings and rollups.
func (s *SensorStore) DeleteSensor(ctx context.Context, id string) error {
	if !tempwatch.IsUUID(id) {
		return tempwatch.NotFound("Sensor")
	}
	return audited(ctx, s.db, func(tx pgx.Tx) (*tempwatch.AuditEvent, error) {
		rows, _ := tx.Query(ctx, `DELETE FROM sensors WHERE id = $1 RETURNING `+sensorColumns, id)
		before, err := pgx.CollectExactlyOneRow(rows, scanSensor)
		if err != nil {
			return nil, translate(err, "Sensor")
		}
		return sensorEvent(tempwatch.ActionDelete, before, nil), nil
	})
}

// SetDeviceKeyHash replaces the sensor's device key hash and returns the
// sensor and its device's ref.
func (s *SensorStore) SetDeviceKeyHash(ctx context.Context, id string, keyHash []byte) (*tempwatch.Sensor, tempwatch.DeviceRef, error) {
	if !tempwatch.IsUUID(id) {
		return nil, tempwatch.DeviceRef{}, tempwatch.NotFound("Sensor")
	}
	var sn *tempwatch.Sensor
	var ref tempwatch.DeviceRef
	err := audited(ctx, s.db, func(tx pgx.Tx) (*tempwatch.AuditEvent, error) {
		rows, _ := tx.Query(ctx, withDeviceRef(`UPDATE sensors SET device_key_hash = $2, updated_at = now()
			WHERE id = $1 RETURNING `+sensorColumns), id, keyHash)
		var err error
		if sn, ref, err = scanSensorRef(rows); err != nil {
			return nil, err
		}
		return sensorEvent(tempwatch.ActionKeyRotation, nil, sn), nil
	})
	if err != nil {
		return nil, tempwatch.DeviceRef{}, err
	}
	return sn, ref, nil
}
