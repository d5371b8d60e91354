package postgres_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// BenchmarkAlarmEvaluation writes batches of 1,000 readings (20 minutes of
// 50 sensors, a reading a minute) with alarm evaluation and, alternating in
// the same run on 50 sensors of their own, without it (the write as it was
// before alarms): it reports both rates and their ratio. Every sensor has
// both limits, a hysteresis and a delay. "in-order": each sensor leaves
// its range for ten minutes every six hours; "late": the same, and every
// tenth batch holds readings between those already stored, so evaluation
// reads windows back; "storm": every sensor crosses a limit every half
// hour or so, an alarm opening and clearing in most batches.
func BenchmarkAlarmEvaluation(b *testing.B) {
	for _, v := range []struct {
		name        string
		late, storm bool
	}{{"in-order", false, false}, {"late", true, false}, {"storm", false, true}} {
		b.Run(v.name, func(b *testing.B) { benchAlarmEvaluation(b, v.late, v.storm) })
	}
}

func benchAlarmEvaluation(b *testing.B, late, storm bool) {
	const sensors, perSensor = 50, 20
	db := pgtest.MustDB(b)
	store := postgres.NewReadingStore(db)
	ref := postgres.WithoutAlarmEvaluation(store)
	client := pgtest.MustClient(b, db, "bench", "")
	rule := tempwatch.ExcursionRule{High: fptr(8), Low: fptr(2), Hysteresis: 0.5, Delay: 2 * time.Minute}
	var with, without []string
	for i := range sensors {
		with = append(with, mustAlarmSensor(&testing.T{}, db, client, fmt.Sprintf("w%02d", i), rule).id)
		without = append(without, mustAlarmSensor(&testing.T{}, db, client, fmt.Sprintf("r%02d", i), rule).id)
	}
	base := time.Now().Add(-200 * 24 * time.Hour).Truncate(time.Minute)
	// batch n holds minutes [n*perSensor, (n+1)*perSensor) of every sensor
	// at an even second; a late batch fills odd seconds of an earlier one.
	batch := func(ids []string, n int, lateOf int) []tempwatch.Reading {
		rs := make([]tempwatch.Reading, 0, sensors*perSensor)
		for s, id := range ids {
			for m := range perSensor {
				k := n*perSensor + m
				at := base.Add(time.Duration(k) * time.Minute)
				if lateOf >= 0 {
					k = lateOf*perSensor + m
					at = base.Add(time.Duration(k)*time.Minute + 30*time.Second)
				}
				v := 5 + math.Sin(float64(k)/50)
				if storm {
					v = 5 + 4.5*math.Sin(float64(k+s*7)/5)
				} else if (k+s*7)%360 < 10 {
					v = 9.5
				}
				rs = append(rs, tempwatch.Reading{SensorID: id, MeasuredAt: at, Value: v})
			}
		}
		return rs
	}
	var withTime, withoutTime time.Duration
	written := 0
	b.ResetTimer()
	for n := range b.N {
		lateOf := -1
		if late && n%10 == 9 {
			lateOf = n - 5
		}
		for _, side := range []struct {
			store *postgres.ReadingStore
			ids   []string
			total *time.Duration
		}{{ref, without, &withoutTime}, {store, with, &withTime}} {
			rs := batch(side.ids, n, lateOf)
			start := time.Now()
			results, err := side.store.WriteReadings(b.Context(), rs)
			*side.total += time.Since(start)
			require.NoError(b, err)
			require.True(b, results[len(results)-1].Inserted)
		}
		written += sensors * perSensor
	}
	b.StopTimer()
	var alarms int
	require.NoError(b, db.QueryRow(b.Context(), `SELECT count(*) FROM alarms WHERE state <> 'pending'`).Scan(&alarms))
	require.Positive(b, alarms, "the readings opened alarms")
	withRate, withoutRate := float64(written)/withTime.Seconds(), float64(written)/withoutTime.Seconds()
	b.ReportMetric(withRate, "readings/s")
	b.ReportMetric(withoutRate, "ref-readings/s")
	b.ReportMetric(withRate/withoutRate, "x-ref")
	b.Logf("%d readings each: with evaluation %.0f/s, without %.0f/s: %.2fx; %d alarms opened", written, withRate, withoutRate, withRate/withoutRate, alarms)
}
