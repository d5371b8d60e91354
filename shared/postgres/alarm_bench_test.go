package postgres_test

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/mongo/mongotest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// BenchmarkAlarmEvaluation writes batches of 1,000 readings (20 minutes of
// 50 sensors, a reading a minute) three ways, alternating batch by batch in
// the same run, each on 50 sensors of its own: the full write (alarm
// evaluation and the limit rollups, on sensors with both limits, a
// hysteresis and a delay); the same write without alarm evaluation (the
// limit rollups alone); and the write as it was before alarms and limit
// rollups (no evaluation, sensors without limits, whose limit-rollup
// trigger stops at its first lookup). It reports the full write's rate and
// its ratios to the other two. "in-order": each sensor leaves
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
	var with, without, before []string
	for i := range sensors {
		with = append(with, mustAlarmSensor(&testing.T{}, db, client, fmt.Sprintf("w%02d", i), rule).id)
		without = append(without, mustAlarmSensor(&testing.T{}, db, client, fmt.Sprintf("r%02d", i), rule).id)
		before = append(before, pgtest.MustSensor(b, db, client, fmt.Sprintf("b%02d", i), fmt.Sprintf("key-b%02d-0123456789abcdef", i)))
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
				v := inOrderValue(k, s)
				if storm {
					v = 5 + 4.5*math.Sin(float64(k+s*7)/5)
				}
				rs = append(rs, tempwatch.Reading{SensorID: id, MeasuredAt: at, Value: v})
			}
		}
		return rs
	}
	var withTime, withoutTime, beforeTime time.Duration
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
		}{{ref, before, &beforeTime}, {ref, without, &withoutTime}, {store, with, &withTime}} {
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
	rate := func(d time.Duration) float64 { return float64(written) / d.Seconds() }
	withRate, withoutRate, beforeRate := rate(withTime), rate(withoutTime), rate(beforeTime)
	b.ReportMetric(withRate, "readings/s")
	b.ReportMetric(beforeRate, "before-readings/s")
	b.ReportMetric(withRate/beforeRate, "x-before")
	b.ReportMetric(withRate/withoutRate, "x-noeval")
	b.Logf("%d readings each: full write %.0f/s; without evaluation %.0f/s (%.2fx); before alarms and limit rollups %.0f/s (%.2fx); %d alarms",
		written, withRate, withoutRate, withRate/withoutRate, beforeRate, withRate/beforeRate, alarms)
}

// inOrderValue is sensor s's value at minute k of the in-order data: near
// 5 °C, above the high limit of 8 ten minutes in every six hours.
func inOrderValue(k, s int) float64 {
	if (k+s*7)%360 < 10 {
		return 9.5
	}
	return 5 + math.Sin(float64(k)/50)
}

// BenchmarkIngestWithAlarms is the measure: in-process ingest (the
// function's batch handler as deployed: device lookup, payload checks, the
// write, the raw payloads archived in MongoDB with their outbox, the Redis
// latest cache) with alarm evaluation and the limit rollups, against the
// same handler writing as before alarms and limit rollups (sensors without
// limits), alternating batch by batch in one run, each on 50 sensors of its
// own. Batches of 1,000 one-reading messages, 20 minutes of 50 sensors,
// each out of range ten minutes every six hours (the "in-order" data of
// BenchmarkAlarmEvaluation).
func BenchmarkIngestWithAlarms(b *testing.B) {
	const sensors, perSensor = 50, 20
	ctx := b.Context()
	db := pgtest.MustDB(b)
	rc, prefix := redistest.MustClient(b)
	cache := redis.New(rc, redis.Options{Prefix: prefix})
	archive := mongo.NewPayloadStore(mongotest.MustDatabase(b))
	now := time.Now().UTC().Truncate(time.Millisecond)
	service := func(w tempwatch.ReadingWriter) *ingest.Service {
		devices := ingest.NewDeviceCache(redis.NewDeviceStore(cache, postgres.NewDeviceStore(db)), ingest.DeviceCacheOptions{})
		return ingest.NewService(devices, w, archive, redis.NewCache(cache, redis.CacheOptions{}),
			slog.New(slog.NewTextHandler(io.Discard, nil)),
			ingest.Config{Outbox: postgres.NewArchiveOutbox(db), Now: func() time.Time { return now }})
	}
	store := postgres.NewReadingStore(db)
	full, before := service(store), service(postgres.WithoutAlarmEvaluation(store))
	rule := tempwatch.ExcursionRule{High: fptr(8), Low: fptr(2), Hysteresis: 0.5, Delay: 2 * time.Minute}
	withClient, beforeClient := pgtest.MustClient(b, db, "with", ""), pgtest.MustClient(b, db, "before", "")
	var withTopics, beforeTopics []string
	for i := range sensors {
		dev := fmt.Sprintf("d%02d", i)
		mustAlarmSensor(&testing.T{}, db, withClient, dev, rule)
		pgtest.MustSensor(b, db, beforeClient, dev, fmt.Sprintf("key-before-%02d-0123456789", i))
		withTopics = append(withTopics, tempwatch.DeviceRef{ClientSlug: "with", DeviceID: dev}.Topic())
		beforeTopics = append(beforeTopics, tempwatch.DeviceRef{ClientSlug: "before", DeviceID: dev}.Topic())
	}
	base := now.Add(-200 * 24 * time.Hour).Truncate(time.Minute)
	batch := func(topics []string, n int) tempwatch.BatchRequest {
		msgs := make([]tempwatch.Message, 0, sensors*perSensor)
		for m := range perSensor {
			for s, topic := range topics {
				k := n*perSensor + m
				v := inOrderValue(k, s)
				at := base.Add(time.Duration(k) * time.Minute)
				msgs = append(msgs, tempwatch.Message{ID: fmt.Sprint(len(msgs)), Topic: topic, ReceivedAt: now,
					Payload: fmt.Appendf(nil, `{"value":%g,"ts":%d,"seq":%d}`, v, at.UnixMilli(), k)})
			}
		}
		return tempwatch.BatchRequest{Messages: msgs}
	}
	var withTime, beforeTime time.Duration
	b.ResetTimer()
	for n := range b.N {
		sides := []struct {
			svc    *ingest.Service
			topics []string
			total  *time.Duration
		}{{before, beforeTopics, &beforeTime}, {full, withTopics, &withTime}}
		if n%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			req := batch(side.topics, n)
			start := time.Now()
			resp := side.svc.HandleBatch(ctx, req)
			*side.total += time.Since(start)
			require.Equal(b, len(req.Messages), resp.Accepted, "batch %d: %+v", n, resp.Rejections)
		}
	}
	b.StopTimer()
	var alarms int
	require.NoError(b, db.QueryRow(ctx, `SELECT count(*) FROM alarms WHERE state <> 'pending'`).Scan(&alarms))
	require.Positive(b, alarms, "the readings opened alarms")
	written := float64(b.N * sensors * perSensor)
	withRate, beforeRate := written/withTime.Seconds(), written/beforeTime.Seconds()
	b.ReportMetric(withRate, "readings/s")
	b.ReportMetric(beforeRate, "before-readings/s")
	b.ReportMetric(withRate/beforeRate, "x-before")
	b.Logf("%.0f readings each: ingest with alarms and limit rollups %.0f/s; before both %.0f/s (%.2fx); %d alarms",
		written, withRate, beforeRate, withRate/beforeRate, alarms)
}
