package postgres

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The limit rollups of an ingest batch that only appends to a sensor's
// readings are kept by deltas the write computes (migration 010): the
// batch's holds beyond a limit, added, and the rest of the hold of the
// sensor's newest reading before the batch, taken away. What a hold is,
// migration 007 says: a reading holds its value until the sensor's next
// reading, at most the silence cap, split at 15-minute buckets.

// rollupBucket is the span of a 15-minute rollup (rollup_bucket in SQL).
// Truncate counts from year 1, a multiple of 15 minutes before the Unix
// epoch, so its buckets are SQL's.
const rollupBucket = 15 * time.Minute

// limitAppend is what limit_rollups_append_begin returns of a sensor whose
// batch only appends: its silence cap and its newest reading, if any.
type limitAppend struct {
	hold time.Duration
	last *tempwatch.Sample
}

// queueLimitAppends queues on b the naming of the sensors whose batch only
// appends (their first reading in firsts), whose limit rollups the write's
// triggers then leave to the deltas (limitDeltas.queue). Its result, by
// sensor id, is filled when b's results are read.
func queueLimitAppends(b *pgx.Batch, sensors [][16]byte, firsts []time.Time) map[string]limitAppend {
	appends := map[string]limitAppend{}
	b.Queue(`SELECT * FROM limit_rollups_append_begin($1, $2)`, sensors, firsts).Query(func(rows pgx.Rows) error {
		var id string
		var holdMicros int64
		var lastAt *time.Time
		var lastValue *float64
		_, err := pgx.ForEachRow(rows, []any{&id, &holdMicros, &lastAt, &lastValue}, func() error {
			a := limitAppend{hold: time.Duration(holdMicros) * time.Microsecond}
			if lastAt != nil {
				a.last = &tempwatch.Sample{At: *lastAt, Value: *lastValue}
			}
			appends[id] = a
			return nil
		})
		if err != nil {
			return fmt.Errorf("name appending sensors: %w", err)
		}
		return nil
	})
	return appends
}

// limitDeltas are changes of limit rollups by sensor and bucket.
type limitDeltas map[limitBucket]*limitDelta

type limitBucket struct {
	sensor string
	start  int64 // Unix microseconds
}

type limitDelta struct{ above, below int64 } // microseconds

// addBatch adds what the batch of s (its readings by time, all after a.last)
// changes in its limit rollups.
func (d limitDeltas) addBatch(s *alarmSensor, a limitAppend, batch []tempwatch.Sample) {
	if len(batch) == 0 {
		return
	}
	first := batch[0].At.Truncate(time.Microsecond) // as PostgreSQL stores it
	if a.last != nil {
		if end := a.last.At.Add(a.hold); first.Before(end) {
			d.addHold(s, a.last.Value, first, end, -1)
		}
	}
	for i, x := range batch {
		from := x.At.Truncate(time.Microsecond)
		to := from.Add(a.hold)
		if i+1 < len(batch) {
			if next := batch[i+1].At.Truncate(time.Microsecond); next.Before(to) {
				to = next
			}
		}
		d.addHold(s, x.Value, from, to, 1)
	}
}

// addHold adds sign times the hold [from, to) of value v, if v is beyond a
// limit of s (above the high limit first, as SQL decides), split at buckets.
func (d limitDeltas) addHold(s *alarmSensor, v float64, from, to time.Time, sign int64) {
	above := s.rule.High != nil && v > *s.rule.High
	if !above && (s.rule.Low == nil || v >= *s.rule.Low) {
		return
	}
	for b := from.Truncate(rollupBucket); b.Before(to); b = b.Add(rollupBucket) {
		lo, hi := from, to
		if b.After(lo) {
			lo = b
		}
		if end := b.Add(rollupBucket); end.Before(hi) {
			hi = end
		}
		k := limitBucket{s.id, b.UnixMicro()}
		x := d[k]
		if x == nil {
			x = &limitDelta{}
			d[k] = x
		}
		if above {
			x.above += sign * hi.Sub(lo).Microseconds()
		} else {
			x.below += sign * hi.Sub(lo).Microseconds()
		}
	}
}

// queue queues on b the deltas' write, which also ends the naming of the
// appending sensors: it must follow every queueLimitAppends.
func (d limitDeltas) queue(b *pgx.Batch) {
	keys := make([]limitBucket, 0, len(d))
	for k, x := range d {
		if *x != (limitDelta{}) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b limitBucket) int {
		return cmp.Or(strings.Compare(a.sensor, b.sensor), cmp.Compare(a.start, b.start))
	})
	sensors, starts := make([]string, len(keys)), make([]time.Time, len(keys))
	above, below := make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		sensors[i], starts[i] = k.sensor, time.UnixMicro(k.start)
		above[i], below[i] = d[k].above, d[k].below
	}
	b.Queue(`SELECT limit_rollups_append_end($1, $2, $3, $4)`, sensors, starts, above, below)
}
