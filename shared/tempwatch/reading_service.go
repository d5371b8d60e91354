package tempwatch

import (
	"context"
	"math"
	"strconv"
	"time"
)

// ReadingService lists, creates, finds, corrects and deletes readings one at
// a time (the measurements API). Every write keeps the sensor's rollups
// exact in the same transaction.
type ReadingService interface {
	// FindReadings returns up to f.Page.Limit+1 readings of f.SensorID,
	// newest created first.
	FindReadings(ctx context.Context, f ReadingFilter) ([]Reading, error)
	// CreateReading stores r (ID and CreatedAt filled in); another reading
	// of the sensor at the same instant is ECONFLICT.
	CreateReading(ctx context.Context, r *Reading) error
	// FindReadingByID returns reading id, ClientID set, or ENOTFOUND.
	FindReadingByID(ctx context.Context, id string) (*Reading, error)
	// UpdateReading applies upd to reading id and returns it.
	UpdateReading(ctx context.Context, id string, upd ReadingUpdate) (*Reading, error)
	// DeleteReading removes reading id and returns what it was.
	DeleteReading(ctx context.Context, id string) (*Reading, error)
}

// ReadingUpdate is a correction: nil fields are left alone. The sensor of a
// reading never changes.
type ReadingUpdate struct {
	Value      *float64   `json:"value"`
	MeasuredAt *time.Time `json:"measured_at"`
}

// Bounds of an acceptable measured_at: device clocks drift, but a reading
// from before 2000 or more than MaxFutureSkew ahead is a broken clock.
var (
	EarliestMeasuredAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxFutureSkew      = time.Hour
)

// ValidateReading checks value and measuredAt against the sensor's
// physical range and the clock, naming each bad field.
func ValidateReading(s *Sensor, value float64, measuredAt time.Time, now time.Time) error {
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
