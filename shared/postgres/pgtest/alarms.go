package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// MustAlarm inserts an alarm of sensorID (and its client) of kind and state
// as evaluation leaves one, and returns its id: it started at started, its
// latest reading came ten minutes later, it opened at its start unless
// pending and, when cleared, cleared twenty minutes after its start; an
// excursion's peak is 9.5 (high) or -1.5 (low).
func MustAlarm(tb testing.TB, db *pgxpool.Pool, sensorID, kind, state string, started time.Time) string {
	tb.Helper()
	var peak *float64
	switch kind {
	case tempwatch.AlarmHigh:
		peak = new(9.5)
	case tempwatch.AlarmLow:
		peak = new(-1.5)
	}
	opened, cleared := &started, (*time.Time)(nil)
	switch state {
	case tempwatch.AlarmPending:
		opened = nil
	case tempwatch.AlarmCleared:
		cleared = new(started.Add(20 * time.Minute))
	}
	var id string
	if err := db.QueryRow(context.Background(), `INSERT INTO alarms
			(sensor_id, client_id, kind, state, started_at, last_at, opened_at, cleared_at, peak)
		SELECT id, client_id, $2, $3, $4, $5, $6, $7, $8 FROM sensors WHERE id = $1 RETURNING id`,
		sensorID, kind, state, started, started.Add(10*time.Minute), opened, cleared, peak).Scan(&id); err != nil {
		tb.Fatalf("pgtest.MustAlarm(%s, %s, %s): %v", sensorID, kind, state, err)
	}
	return id
}
