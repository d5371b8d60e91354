package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// noArchive stands in for MongoDB in the PostgreSQL-only variant.
type noArchive struct{}

func (noArchive) InsertRawPayloads(context.Context, []tempwatch.RawPayload) error { return nil }
func (noArchive) InsertDeadLetters(context.Context, []tempwatch.DeadLetter) error { return nil }

// downArchive is MongoDB down, refusing at once (a server that is gone
// makes the first write wait out its timeout; later ones are not sent).
type downArchive struct{}

func (downArchive) InsertRawPayloads(context.Context, []tempwatch.RawPayload) error {
	return errors.New("archive down")
}

func (downArchive) InsertDeadLetters(context.Context, []tempwatch.DeadLetter) error {
	return errors.New("archive down")
}

const (
	benchSensors   = 50
	benchBatchSize = 1000
)

// BenchmarkIngestBatch ingests batches of 1,000 one-reading messages over 50
// sensors and, in the same run, writes the same rows with a bare pgx
// CopyFrom into a readings table of the same schema: it reports both rates
// and their ratio. "full" is the function as deployed: the MongoDB
// (FerretDB) archive, its PostgreSQL outbox (drained alongside, empty) and
// the Redis latest cache; "postgres" leaves MongoDB out; "mongo-down" has
// MongoDB down, every raw payload going to the outbox; "limits" is
// "postgres" with every sensor's readings crossing its alert limits, so
// the time beyond them is kept in every batch (migration 007).
func BenchmarkIngestBatch(b *testing.B) {
	for _, variant := range []string{"postgres", "limits", "full", "mongo-down"} {
		b.Run(variant, func(b *testing.B) {
			benchIngest(b, variant)
		})
	}
}

func benchIngest(b *testing.B, variant string) {
	ctx := context.Background()
	e := newEnv(b)
	client := pgtest.MustClient(b, e.db, "bench", "")
	sensorIDs := make([]string, benchSensors)
	topics := make([]string, benchSensors)
	for i := range benchSensors {
		dev := fmt.Sprintf("bench-%02d", i)
		sensorIDs[i] = pgtest.MustSensor(b, e.db, client, dev, "key-"+dev)
		topics[i] = topic("bench", dev)
	}
	if variant == "limits" {
		_, err := e.db.Exec(ctx, `UPDATE sensors SET alert_low = 17, alert_high = 23 WHERE id = ANY($1)`, sensorIDs)
		require.NoError(b, err)
	}
	var archive tempwatch.PayloadArchive = noArchive{}
	var cfg ingest.Config
	switch variant {
	case "full":
		archive = nil // the env's MongoDB
		cfg.Outbox = postgres.NewArchiveOutbox(e.db)
	case "mongo-down":
		archive = downArchive{}
		cfg.Outbox = postgres.NewArchiveOutbox(e.db)
	}
	svc := e.serviceWith(cfg, nil, archive, nil)
	refDB := pgtest.MustDB(b)
	refClient := pgtest.MustClient(b, refDB, "ref", "")
	refSensors := make([]string, benchSensors)
	for i := range benchSensors {
		refSensors[i] = pgtest.MustSensor(b, refDB, refClient, fmt.Sprintf("ref-%02d", i), fmt.Sprintf("ref-key-%02d", i))
	}

	base := e.now.Add(-300 * 24 * time.Hour)
	batches := make([]tempwatch.BatchRequest, b.N)
	rows := make([][][]any, b.N)
	for n := range b.N {
		msgs := make([]tempwatch.Message, benchBatchSize)
		rs := make([][]any, benchBatchSize)
		for i := range benchBatchSize {
			k := n*benchBatchSize + i
			s := k % benchSensors
			at := base.Add(time.Duration(k/benchSensors) * time.Second)
			v := 15 + float64(k%1000)/100
			msgs[i] = msg(fmt.Sprint(i), topics[s], fmt.Sprintf(`{"value":%g,"ts":%d,"seq":%d,"battery":3.1}`, v, at.UnixMilli(), k), e.now)
			rs[i] = []any{refSensors[s], v, at, int64(k)}
		}
		batches[n] = tempwatch.BatchRequest{Messages: msgs}
		rows[n] = rs
	}

	// Reference: bare CopyFrom of the same rows, one COPY per batch,
	// alternating with the ingest batches so that both see the same load.
	var copyElapsed, elapsed time.Duration
	b.ResetTimer()
	for n := range b.N {
		b.StopTimer()
		start := time.Now()
		_, err := refDB.CopyFrom(ctx, pgx.Identifier{"readings"}, []string{"sensor_id", "value", "measured_at", "seq"}, pgx.CopyFromRows(rows[n]))
		require.NoError(b, err)
		copyElapsed += time.Since(start)
		b.StartTimer()

		start = time.Now()
		resp := svc.HandleBatch(ctx, batches[n])
		elapsed += time.Since(start)
		if resp.Accepted != benchBatchSize {
			b.Fatalf("batch %d: accepted %d of %d (failures %d, rejected %v)", n, resp.Accepted, benchBatchSize, len(resp.BatchItemFailures), resp.Rejections)
		}
	}
	b.StopTimer()

	total := float64(b.N * benchBatchSize)
	ingestRate := total / elapsed.Seconds()
	copyRate := total / copyElapsed.Seconds()
	b.ReportMetric(ingestRate, "readings/s")
	b.ReportMetric(copyRate, "copy_readings/s")
	b.ReportMetric(ingestRate/copyRate, "ratio")
	require.Equal(b, 0, e.rollupMismatches(b))
	if variant == "mongo-down" {
		p, err := postgres.NewArchiveOutbox(e.db).Pending(ctx)
		require.NoError(b, err)
		require.Equal(b, b.N*benchBatchSize, p.Payloads, "every raw payload waits in the outbox")
	}
}
