package mock

import (
	"context"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.ReadingQuery = (*ReadingQuery)(nil)

// ReadingQuery is a fake tempwatch.ReadingQuery.
type ReadingQuery struct {
	FindSensorOwnerFn    func(ctx context.Context, sensorID string) (tempwatch.SensorOwner, error)
	FindClientTimezoneFn func(ctx context.Context, clientID string) (string, error)
	SensorIDsOfClientFn  func(ctx context.Context, clientID string) ([]string, error)
	FindReadingsFn       func(ctx context.Context, f tempwatch.ReadingFilter) ([]tempwatch.Reading, error)
	LatestReadingsFn     func(ctx context.Context, sensorIDs []string) (map[string]tempwatch.Reading, error)
	DailyAveragesFn      func(ctx context.Context, f tempwatch.DailyAverageFilter) ([]tempwatch.DailyAverage, error)
}

// FindSensorOwner calls FindSensorOwnerFn.
func (q *ReadingQuery) FindSensorOwner(ctx context.Context, sensorID string) (tempwatch.SensorOwner, error) {
	return q.FindSensorOwnerFn(ctx, sensorID)
}

// FindClientTimezone calls FindClientTimezoneFn.
func (q *ReadingQuery) FindClientTimezone(ctx context.Context, clientID string) (string, error) {
	return q.FindClientTimezoneFn(ctx, clientID)
}

// SensorIDsOfClient calls SensorIDsOfClientFn.
func (q *ReadingQuery) SensorIDsOfClient(ctx context.Context, clientID string) ([]string, error) {
	return q.SensorIDsOfClientFn(ctx, clientID)
}

// FindReadings calls FindReadingsFn.
func (q *ReadingQuery) FindReadings(ctx context.Context, f tempwatch.ReadingFilter) ([]tempwatch.Reading, error) {
	return q.FindReadingsFn(ctx, f)
}

// LatestReadings calls LatestReadingsFn.
func (q *ReadingQuery) LatestReadings(ctx context.Context, sensorIDs []string) (map[string]tempwatch.Reading, error) {
	return q.LatestReadingsFn(ctx, sensorIDs)
}

// DailyAverages calls DailyAveragesFn.
func (q *ReadingQuery) DailyAverages(ctx context.Context, f tempwatch.DailyAverageFilter) ([]tempwatch.DailyAverage, error) {
	return q.DailyAveragesFn(ctx, f)
}
