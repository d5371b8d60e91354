package postgres_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// A wider brute force than TestAlarmsMatchBruteForce: seconds apart, a
// wide hysteresis band, longer delays, heavier reordering, and corrections
// interleaved with batches.
func TestAlarmsMatchBruteForceWide(t *testing.T) {
	seed, _ := strconv.ParseUint(os.Getenv("ALARM_SEED"), 10, 64)
	db := pgtest.MustDB(t)
	store := postgres.NewReadingStore(db)
	ctx := t.Context()
	client := pgtest.MustClient(t, db, "wide", "")
	rng := rand.New(rand.NewPCG(seed+77, 78))
	for h := range 25 {
		rule := tempwatch.ExcursionRule{Hysteresis: float64(rng.IntN(7)) * 0.5, Delay: time.Duration(rng.IntN(5)) * 45 * time.Second}
		if rng.IntN(4) > 0 {
			rule.High = fptr(6)
		}
		if rng.IntN(4) > 0 {
			rule.Low = fptr(4)
		}
		s := mustAlarmSensor(t, db, client, "w"+strconv.Itoa(h), rule)
		at := func(i int) time.Time { return alarmT0.Add(time.Duration(i) * 20 * time.Second) }
		val := func() float64 { return float64(rng.IntN(21)) * 0.5 }
		var todo []tempwatch.Reading
		for m := range 50 {
			if rng.IntN(5) > 0 {
				todo = append(todo, tempwatch.Reading{SensorID: s.id, MeasuredAt: at(m), Value: val()})
			}
		}
		for range len(todo) / 3 {
			i, j := rng.IntN(len(todo)), rng.IntN(len(todo))
			todo[i], todo[j] = todo[j], todo[i]
		}
		check := func(step string) {
			t.Helper()
			want := wantAlarms(rule, readSamples(t, db, s.id))
			require.Equal(t, fmt.Sprint(want), fmt.Sprint(readAlarms(t, db, s.id)), "history %d, %s, rule %+v", h, step, rule)
			checkAlarmEvents(t, db, s.id, fmt.Sprintf("history %d, %s", h, step))
		}
		for len(todo) > 0 {
			n := min(len(todo), 1+rng.IntN(5))
			seen := map[time.Time]bool{}
			var batch []tempwatch.Reading
			for _, r := range todo[:n] {
				if !seen[r.MeasuredAt] {
					seen[r.MeasuredAt] = true
					batch = append(batch, r)
				}
			}
			_, err := store.WriteReadings(ctx, batch)
			require.NoError(t, err)
			todo = todo[n:]
			check("after a batch")
			if rng.IntN(4) == 0 {
				var id int64
				if err := db.QueryRow(ctx, `SELECT id FROM readings WHERE sensor_id = $1 ORDER BY random() LIMIT 1`, s.id).Scan(&id); err != nil {
					continue
				}
				switch rng.IntN(3) {
				case 0:
					_, err = store.UpdateReading(ctx, strconv.FormatInt(id, 10), tempwatch.ReadingUpdate{Value: fptr(val())})
				case 1:
					when := at(rng.IntN(55)).Add(7 * time.Second)
					_, err = store.UpdateReading(ctx, strconv.FormatInt(id, 10), tempwatch.ReadingUpdate{MeasuredAt: &when})
				default:
					_, err = store.DeleteReading(ctx, strconv.FormatInt(id, 10))
				}
				if tempwatch.ErrorCode(err) == tempwatch.ECONFLICT {
					continue
				}
				require.NoError(t, err)
				check("after a correction")
			}
		}
	}
}
