package mock

import (
	"context"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.ReadingExport = (*ReadingExport)(nil)

// ReadingExport is a fake tempwatch.ReadingExport.
type ReadingExport struct {
	SensorSubjectFn func(ctx context.Context, sensorID string) (tempwatch.ExportSubject, error)
	ClientSubjectFn func(ctx context.Context, clientID string) (tempwatch.ExportSubject, error)
	EachReadingFn   func(ctx context.Context, sensorID string, from time.Time, to time.Time, fn func(measuredAt time.Time, value float64) error) error
	DailyAveragesFn func(ctx context.Context, f tempwatch.DailyAverageFilter) ([]tempwatch.DailyAverage, error)
	CountReadingsFn func(ctx context.Context, sub tempwatch.ExportSubject, from, to time.Time) (int64, error)
}

// SensorSubject calls SensorSubjectFn.
func (s *ReadingExport) SensorSubject(ctx context.Context, sensorID string) (tempwatch.ExportSubject, error) {
	return s.SensorSubjectFn(ctx, sensorID)
}

// ClientSubject calls ClientSubjectFn.
func (s *ReadingExport) ClientSubject(ctx context.Context, clientID string) (tempwatch.ExportSubject, error) {
	return s.ClientSubjectFn(ctx, clientID)
}

// EachReading calls EachReadingFn.
func (s *ReadingExport) EachReading(ctx context.Context, sensorID string, from time.Time, to time.Time, fn func(measuredAt time.Time, value float64) error) error {
	return s.EachReadingFn(ctx, sensorID, from, to, fn)
}

// DailyAverages calls DailyAveragesFn.
func (s *ReadingExport) DailyAverages(ctx context.Context, f tempwatch.DailyAverageFilter) ([]tempwatch.DailyAverage, error) {
	return s.DailyAveragesFn(ctx, f)
}

// CountReadings calls CountReadingsFn.
func (s *ReadingExport) CountReadings(ctx context.Context, sub tempwatch.ExportSubject, from, to time.Time) (int64, error) {
	return s.CountReadingsFn(ctx, sub, from, to)
}
