package tempwatch

import (
	"context"
	"time"
)

// SilenceSweep opens the silent alarms of sensors that stopped sending.
// Clearing one is ingest's: the next reading of its sensor clears it.
type SilenceSweep interface {
	// OpenSilentAlarms opens a silent alarm, with its alarm.opened event,
	// for every sensor that was heard from and whose newest batch is at
	// least its silence threshold older than now, unless one is open
	// already; it returns how many it opened.
	OpenSilentAlarms(ctx context.Context, now time.Time) (int, error)
}
