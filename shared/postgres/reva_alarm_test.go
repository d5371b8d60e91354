package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Lowering a limit while an excursion is under way re-evaluates the present
// "back to the last reading settled under the new rule" (reevaluateSensor's
// doc): the excursion under the new rule starts at the first reading above
// the new limit. The window is anchored at the stored excursion's start
// (raised under the old rule), so the earlier reading is missed: the start
// is late and, with a delay, the alarm that is due does not open.
func TestRevaLowerLimitDuringLiveExcursion(t *testing.T) {
	db := pgtest.MustDB(t)
	store := postgres.NewReadingStore(db)
	ctx := t.Context()
	client := pgtest.MustClient(t, db, "reva-rule", "")
	s := mustAlarmSensor(t, db, client, "rl", tempwatch.ExcursionRule{High: fptr(8), Delay: 2 * time.Minute})
	var rs []tempwatch.Reading
	for m, v := range []float64{5, 7, 9, 9} {
		rs = append(rs, tempwatch.Reading{SensorID: s.id, MeasuredAt: alarmMinute(m), Value: v})
	}
	_, err := store.WriteReadings(ctx, rs)
	require.NoError(t, err)
	require.Equal(t, "[high pending 08:02..08:03 cleared 00:00 opened 00:00 peak 9]", fmt.Sprint(readAlarms(t, db, s.id)))

	_, err = postgres.NewSensorStore(db).UpdateSensor(ctx, s.id, tempwatch.SensorUpdate{AlertHigh: tempwatch.NullFloat{Set: true, Value: fptr(6)}})
	require.NoError(t, err)
	newRule := tempwatch.ExcursionRule{High: fptr(6), Delay: 2 * time.Minute}
	assert.Equal(t, fmt.Sprint(wantAlarms(newRule, readSamples(t, db, s.id))), fmt.Sprint(readAlarms(t, db, s.id)),
		"above 6 since 08:01 (the last reading settled under the new rule is 08:00): open since 08:03")
}
