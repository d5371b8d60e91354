package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// BenchmarkBatchEvent runs 500-message bridge events through what the
// function's runtime runs for each invocation (lambdahttp.StartWithEvents:
// event dispatch, BatchEventHandler, HandleBatch, response encoding) against PostgreSQL and Redis (the
// MongoDB archive is left out: it is measured by BenchmarkIngestBatch/full).
// The events are what the bridge sends: JSON, payloads base64, one reading
// each as the end-to-end benchmark's publishers write it.
func BenchmarkBatchEvent(b *testing.B) {
	const sensors, batch = 50, 500
	ctx := context.Background()
	e := newEnv(b)
	client := pgtest.MustClient(b, e.db, "bench", "")
	topics := make([]string, sensors)
	for i := range sensors {
		dev := fmt.Sprintf("bench-%02d", i)
		pgtest.MustSensor(b, e.db, client, dev, "key-"+dev)
		topics[i] = topic("bench", dev)
	}
	svc := e.service(nil, noArchive{}, nil)
	h := lambdahttp.NewEventsHandler(ingest.NewHandler(svc, quietLog()), ingest.BatchEventHandler(svc))

	base := e.now.Add(-300 * 24 * time.Hour)
	events := make([][]byte, b.N)
	for n := range b.N {
		msgs := make([]tempwatch.Message, batch)
		for i := range batch {
			k := n*batch + i
			at := base.Add(time.Duration(k/sensors) * time.Second)
			payload := `{"value":` + strconv.FormatFloat(15+float64(k%1000)/100, 'f', -1, 64) +
				`,"ts":"` + at.Format("2006-01-02T15:04:05.000Z07:00") + `"}`
			msgs[i] = tempwatch.Message{ID: strconv.FormatInt(int64(k+1), 36), Topic: topics[k%sensors],
				Payload: []byte(payload), ReceivedAt: e.now.Add(time.Duration(i) * time.Microsecond)}
		}
		ev, err := json.Marshal(tempwatch.BatchRequest{Messages: msgs})
		require.NoError(b, err)
		events[n] = ev
	}

	b.ReportAllocs()
	cpu := processCPU(b)
	b.ResetTimer()
	for n := range b.N {
		out, err := h.Invoke(ctx, events[n])
		if err != nil {
			b.Fatal(err)
		}
		var resp tempwatch.BatchResponse
		if err := json.Unmarshal(out, &resp); err != nil || resp.Accepted != batch {
			b.Fatalf("event %d: accepted %d of %d (%v): %s", n, resp.Accepted, batch, err, out)
		}
	}
	b.StopTimer()
	// Wall time is mostly PostgreSQL's; the process's own CPU is what the
	// end-to-end benchmark's "bootstrap (ingest)" line measures.
	b.ReportMetric(float64((processCPU(b)-cpu).Nanoseconds())/float64(b.N*batch), "cpu-ns/reading")
}

// processCPU returns the user and system CPU time this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
