package tempwatch

import (
	"context"
	"time"
)

// ExportSensor names one sensor in a CSV export.
type ExportSensor struct {
	ID       string
	DeviceID string
	Name     string
}

// ExportSubject is what an export is of: one sensor, or every sensor of a
// client.
type ExportSubject struct {
	ClientID string
	// Timezone is the client's zone, the default of the export's times.
	Timezone string
	// Label names the file: the sensor's device id or the client's slug.
	Label string
	// Sensors are the sensor, or the client's sensors in device id order.
	Sensors []ExportSensor
}

// ReadingExport is the read side the CSV export streams from. The daily
// statistics come from DailyAverages, the statistics API's own query, so a
// column added there is exported by adding it to the export's column table.
type ReadingExport interface {
	// SensorSubject returns sensorID with its client, or ENOTFOUND.
	SensorSubject(ctx context.Context, sensorID string) (ExportSubject, error)
	// ClientSubject returns clientID with its sensors, or ENOTFOUND.
	ClientSubject(ctx context.Context, clientID string) (ExportSubject, error)
	// EachReading calls fn with every reading of sensorID measured in
	// [from, to), oldest first, as the rows arrive from the database (none
	// is held after fn returns). It stops at fn's first error, or when ctx
	// ends, and returns that error.
	EachReading(ctx context.Context, sensorID string, from, to time.Time, fn func(measuredAt time.Time, value float64) error) error
	// CountReadings bounds from above how many readings the subject's
	// sensors hold measured in [from, to): whole days of the daily
	// rollups in the subject's zone, no reading read.
	CountReadings(ctx context.Context, sub ExportSubject, from, to time.Time) (int64, error)
	DailyAverages(ctx context.Context, f DailyAverageFilter) ([]DailyAverage, error)
}
