package measurements_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// TestCorrectionsRacingIngestKeepRollupsExact runs API corrections (create,
// move, re-value, delete) of one sensor while ingest writes batches into the
// same buckets with its incremental rollup upserts; afterwards every bucket
// must equal the brute-force aggregate.
func TestCorrectionsRacingIngestKeepRollupsExact(t *testing.T) {
	t.Parallel()
	env := apitest.MustEnv(t)
	sensor := pgtest.MustSensor(t, env.DB, env.ClientA, "probe", "key-1")
	store := postgres.NewReadingStore(env.DB)
	writer := postgres.NewReadingStore(env.DB)
	ctx := context.Background()
	base := time.Now().UTC().Truncate(15 * time.Minute).Add(-3 * time.Hour)

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Add(1)
	go func() { // ingest: even seconds, 30 batches of 10
		defer wg.Done()
		for b := range 30 {
			batch := make([]tempwatch.Reading, 10)
			for i := range batch {
				n := b*10 + i
				batch[i] = tempwatch.Reading{SensorID: sensor, Value: float64(n%37) - 5, MeasuredAt: base.Add(time.Duration(2*n) * time.Second)}
			}
			if _, err := writer.WriteReadings(ctx, batch); err != nil {
				errs <- err
				return
			}
		}
	}()
	for w := range 3 {
		wg.Add(1)
		go func() { // corrections: odd seconds, disjoint per worker
			defer wg.Done()
			for i := range 20 {
				at := base.Add(time.Duration(2*(w*100+i)+1) * time.Second)
				m := &tempwatch.Reading{SensorID: sensor, Value: float64(i), MeasuredAt: at}
				if err := store.CreateReading(ctx, m); err != nil {
					errs <- err
					return
				}
				id := strconv.FormatInt(m.ID, 10)
				switch i % 3 {
				case 0:
					v := 90.0 - float64(i) // a new maximum, later taken back
					moved := at.Add(20 * time.Minute)
					if _, err := store.UpdateReading(ctx, id, tempwatch.ReadingUpdate{Value: &v, MeasuredAt: &moved}); err != nil {
						errs <- err
						return
					}
				case 1:
					if _, err := store.DeleteReading(ctx, id); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assertRollupsExact(t, env, sensor)
}
