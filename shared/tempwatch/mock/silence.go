package mock

import (
	"context"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.SilenceSweep = (*SilenceSweep)(nil)

// SilenceSweep is a fake tempwatch.SilenceSweep.
type SilenceSweep struct {
	OpenSilentAlarmsFn func(ctx context.Context, now time.Time) (int, error)
}

// OpenSilentAlarms calls OpenSilentAlarmsFn.
func (s *SilenceSweep) OpenSilentAlarms(ctx context.Context, now time.Time) (int, error) {
	return s.OpenSilentAlarmsFn(ctx, now)
}
