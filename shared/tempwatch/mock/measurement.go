package mock

import (
	"context"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.MeasurementService = (*MeasurementService)(nil)

// MeasurementService is a fake tempwatch.MeasurementService.
type MeasurementService struct {
	CreateMeasurementFn   func(ctx context.Context, m *tempwatch.Measurement) error
	FindMeasurementByIDFn func(ctx context.Context, id string) (*tempwatch.Measurement, error)
	FindMeasurementsFn    func(ctx context.Context, f tempwatch.MeasurementFilter) ([]*tempwatch.Measurement, error)
	UpdateMeasurementFn   func(ctx context.Context, id string, upd tempwatch.MeasurementUpdate) (*tempwatch.Measurement, error)
	DeleteMeasurementFn   func(ctx context.Context, id string) (*tempwatch.Measurement, error)
}

// CreateMeasurement calls CreateMeasurementFn.
func (s *MeasurementService) CreateMeasurement(ctx context.Context, m *tempwatch.Measurement) error {
	return s.CreateMeasurementFn(ctx, m)
}

// FindMeasurementByID calls FindMeasurementByIDFn.
func (s *MeasurementService) FindMeasurementByID(ctx context.Context, id string) (*tempwatch.Measurement, error) {
	return s.FindMeasurementByIDFn(ctx, id)
}

// FindMeasurements calls FindMeasurementsFn.
func (s *MeasurementService) FindMeasurements(ctx context.Context, f tempwatch.MeasurementFilter) ([]*tempwatch.Measurement, error) {
	return s.FindMeasurementsFn(ctx, f)
}

// UpdateMeasurement calls UpdateMeasurementFn.
func (s *MeasurementService) UpdateMeasurement(ctx context.Context, id string, upd tempwatch.MeasurementUpdate) (*tempwatch.Measurement, error) {
	return s.UpdateMeasurementFn(ctx, id, upd)
}

// DeleteMeasurement calls DeleteMeasurementFn.
func (s *MeasurementService) DeleteMeasurement(ctx context.Context, id string) (*tempwatch.Measurement, error) {
	return s.DeleteMeasurementFn(ctx, id)
}
