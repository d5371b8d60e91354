package mock

import (
	"context"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.ReadingService = (*ReadingService)(nil)

// ReadingService is a fake tempwatch.ReadingService.
type ReadingService struct {
	FindReadingsFn    func(ctx context.Context, f tempwatch.ReadingFilter) ([]tempwatch.Reading, error)
	CreateReadingFn   func(ctx context.Context, r *tempwatch.Reading) error
	FindReadingByIDFn func(ctx context.Context, id string) (*tempwatch.Reading, error)
	UpdateReadingFn   func(ctx context.Context, id string, upd tempwatch.ReadingUpdate) (*tempwatch.Reading, error)
	DeleteReadingFn   func(ctx context.Context, id string) (*tempwatch.Reading, error)
}

// FindReadings calls FindReadingsFn.
func (s *ReadingService) FindReadings(ctx context.Context, f tempwatch.ReadingFilter) ([]tempwatch.Reading, error) {
	return s.FindReadingsFn(ctx, f)
}

// CreateReading calls CreateReadingFn.
func (s *ReadingService) CreateReading(ctx context.Context, r *tempwatch.Reading) error {
	return s.CreateReadingFn(ctx, r)
}

// FindReadingByID calls FindReadingByIDFn.
func (s *ReadingService) FindReadingByID(ctx context.Context, id string) (*tempwatch.Reading, error) {
	return s.FindReadingByIDFn(ctx, id)
}

// UpdateReading calls UpdateReadingFn.
func (s *ReadingService) UpdateReading(ctx context.Context, id string, upd tempwatch.ReadingUpdate) (*tempwatch.Reading, error) {
	return s.UpdateReadingFn(ctx, id, upd)
}

// DeleteReading calls DeleteReadingFn.
func (s *ReadingService) DeleteReading(ctx context.Context, id string) (*tempwatch.Reading, error) {
	return s.DeleteReadingFn(ctx, id)
}
