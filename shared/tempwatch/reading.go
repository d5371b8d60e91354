package tempwatch

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Reading is one temperature measurement of a sensor: what ingest writes,
// the read paths page through, and the measurements API shows and corrects
// (a "measurement" is the API's name for a reading). Value is always in
// degrees Celsius, whatever unit the device sent.
type Reading struct {
	ID         int64     `json:"id"`
	SensorID   string    `json:"sensor_id"`
	Value      float64   `json:"value"`
	MeasuredAt time.Time `json:"measured_at"`
	CreatedAt  time.Time `json:"created_at"`
	Seq        *int64    `json:"seq,omitempty"`
	// ClientID is the client of the sensor, for tenant checks; set by the
	// single-reading reads and writes of ReadingService.
	ClientID string `json:"-"`
}

// ReadingFilter selects a page of one sensor's readings, newest created
// first. From (inclusive) and To (exclusive) bound measured_at when set.
type ReadingFilter struct {
	SensorID string
	From, To time.Time
	Page     PageRequest
}

// SensorOwner is what the read paths need to know about a sensor before
// answering: whose it is and the client's time zone.
type SensorOwner struct {
	SensorID string
	ClientID string
	Timezone string
}

// DailyAverage is one local day of one sensor's readings.
type DailyAverage struct {
	SensorID string    `json:"sensor_id"`
	Day      string    `json:"day"` // YYYY-MM-DD in the zone asked for
	Avg      float64   `json:"avg"`
	Min      float64   `json:"min"`
	Max      float64   `json:"max"`
	Count    int64     `json:"count"`
	FirstAt  time.Time `json:"first_measured_at"`
	LastAt   time.Time `json:"last_measured_at"`
	// MKT is the day's mean kinetic temperature (USP <1079>) over its
	// readings, in degrees Celsius, under the filter's ΔH; nil when unknown.
	MKT *float64 `json:"mkt"`
	// MinutesAbove and MinutesBelow are the minutes of the day the sensor
	// held a value above its alert_high or below its alert_low: each
	// reading holds until the sensor's next one, at most its silence_after.
	// nil when the sensor has no such limit.
	MinutesAbove *float64 `json:"minutes_above"`
	MinutesBelow *float64 `json:"minutes_below"`
}

// DailyAverageFilter selects local days From..To (inclusive, YYYY-MM-DD) in
// Timezone, newest first, of one sensor or of every sensor of a client.
// Before, when set, resumes after the page that ended at that day (and, for a
// client, at that sensor).
type DailyAverageFilter struct {
	SensorID string
	ClientID string
	Timezone string
	// ClientTimezone is the client's own zone, whose days are kept
	// precomputed, as are those of up to four other zones asked for before;
	// any further zone is grouped from the 15-minute rollups.
	ClientTimezone string
	From, To       time.Time // local dates, time of day ignored
	BeforeDay      time.Time
	BeforeSensor   string
	Limit          int
	// MKTDeltaH is the ΔH of the days' MKT in kJ/mol: 0 for
	// DefaultMKTDeltaH, the one the rollups keep.
	MKTDeltaH float64
}

// DefaultMKTDeltaH is the mean kinetic temperature's ΔH (heat of
// activation) in kJ/mol that USP <1079> gives and the rollups keep; the
// daily statistics compute another from the readings.
const DefaultMKTDeltaH = 83.144

// MinMKTDeltaH and MaxMKTDeltaH bound the ΔH a request may ask for: the
// values published for drug products lie well inside.
const (
	MinMKTDeltaH = 20.0
	MaxMKTDeltaH = 300.0
)

// ParseMKTDeltaH reads the mkt_delta_h parameter s (kJ/mol; "" for the
// default), recording a problem in v. It returns 0 for the default.
func ParseMKTDeltaH(s string, v Validation) float64 {
	if s == "" {
		return 0
	}
	dh, err := strconv.ParseFloat(s, 64)
	if err != nil || !(dh >= MinMKTDeltaH && dh <= MaxMKTDeltaH) {
		v.Add("mkt_delta_h", fmt.Sprintf("must be a heat of activation in kJ/mol from %g to %g (default %g)", MinMKTDeltaH, MaxMKTDeltaH, DefaultMKTDeltaH))
		return 0
	}
	if dh == DefaultMKTDeltaH {
		return 0
	}
	return dh
}

// ReadingQuery is the read side of readings: pages, latest, daily averages.
type ReadingQuery interface {
	FindSensorOwner(ctx context.Context, sensorID string) (SensorOwner, error)
	FindClientTimezone(ctx context.Context, clientID string) (string, error)
	SensorIDsOfClient(ctx context.Context, clientID string) ([]string, error)
	FindReadings(ctx context.Context, f ReadingFilter) ([]Reading, error)
	LatestReadings(ctx context.Context, sensorIDs []string) (map[string]Reading, error)
	DailyAverages(ctx context.Context, f DailyAverageFilter) ([]DailyAverage, error)
}
