package mock

import (
	"context"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.AlarmService = (*AlarmService)(nil)

// AlarmService is a fake tempwatch.AlarmService.
type AlarmService struct {
	FindAlarmsFn       func(ctx context.Context, f tempwatch.AlarmFilter) ([]*tempwatch.Alarm, error)
	FindAlarmByIDFn    func(ctx context.Context, id string) (*tempwatch.Alarm, error)
	AcknowledgeAlarmFn func(ctx context.Context, id, userID, comment string) (*tempwatch.Alarm, error)
}

// FindAlarms calls FindAlarmsFn.
func (s *AlarmService) FindAlarms(ctx context.Context, f tempwatch.AlarmFilter) ([]*tempwatch.Alarm, error) {
	return s.FindAlarmsFn(ctx, f)
}

// FindAlarmByID calls FindAlarmByIDFn.
func (s *AlarmService) FindAlarmByID(ctx context.Context, id string) (*tempwatch.Alarm, error) {
	return s.FindAlarmByIDFn(ctx, id)
}

// AcknowledgeAlarm calls AcknowledgeAlarmFn.
func (s *AlarmService) AcknowledgeAlarm(ctx context.Context, id, userID, comment string) (*tempwatch.Alarm, error) {
	return s.AcknowledgeAlarmFn(ctx, id, userID, comment)
}
