package tempwatch

import (
	"context"
	"math"
	"strconv"
	"time"
)

// Measurement is one stored reading of a sensor, as the measurements API
// shows and corrects it. Value is in degrees Celsius.
type Measurement struct {
	ID         int64     `json:"id"`
	SensorID   string    `json:"sensor_id"`
	Value      float64   `json:"value"`
	MeasuredAt time.Time `json:"measured_at"`
	CreatedAt  time.Time `json:"created_at"`
	// ClientID is the client of the sensor, for tenant checks.
	ClientID string `json:"-"`
}

// MeasurementUpdate is a correction: nil fields are left alone. The sensor of
// a measurement never changes.
type MeasurementUpdate struct {
	Value      *float64   `json:"value"`
	MeasuredAt *time.Time `json:"measured_at"`
}

// MeasurementFilter selects the measurements of one sensor for a list.
type MeasurementFilter struct {
	SensorID string
	// From and To, when set, bound measured_at: From <= measured_at < To.
	From, To *time.Time
	Page     PageRequest
}

// MeasurementService stores measurements. Every write keeps the sensor's
// rollups exact in the same transaction.
type MeasurementService interface {
	CreateMeasurement(ctx context.Context, m *Measurement) error
	FindMeasurementByID(ctx context.Context, id string) (*Measurement, error)
	FindMeasurements(ctx context.Context, f MeasurementFilter) ([]*Measurement, error)
	UpdateMeasurement(ctx context.Context, id string, upd MeasurementUpdate) (*Measurement, error)
	DeleteMeasurement(ctx context.Context, id string) (*Measurement, error)
}

// Bounds of an acceptable measured_at: device clocks drift, but a reading
// from before 2000 or more than MaxFutureSkew ahead is a broken clock.
var (
	EarliestMeasuredAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxFutureSkew      = time.Hour
)

// ValidateMeasurement checks value and measuredAt against the sensor's
// physical range and the clock, naming each bad field.
func ValidateMeasurement(s *Sensor, value float64, measuredAt time.Time, now time.Time) error {
	v := Validation{}
	switch {
	case math.IsNaN(value) || math.IsInf(value, 0):
		v.Add("value", "must be a finite number")
	case value < s.MinValue || value > s.MaxValue:
		v.Add("value", "must be within the sensor's range "+fmtFloat(s.MinValue)+" to "+fmtFloat(s.MaxValue)+" °C")
	}
	switch {
	case measuredAt.IsZero():
		v.Add("measured_at", "is required")
	case measuredAt.Before(EarliestMeasuredAt):
		v.Add("measured_at", "must not be before 2000-01-01")
	case measuredAt.After(now.Add(MaxFutureSkew)):
		v.Add("measured_at", "must not be more than 1 hour in the future")
	}
	return v.Err()
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
