package export_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rssBytes is the process's resident set, from /proc/self/statm.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// peaks samples the heap's objects and the RSS every millisecond until
// stopped.
type peaks struct {
	heap, rss uint64
	stop      chan struct{}
	wg        sync.WaitGroup
}

func samplePeaks() *peaks {
	p := &peaks{stop: make(chan struct{}), heap: heapNow(), rss: rssBytes()}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				p.heap, p.rss = max(p.heap, heapNow()), max(p.rss, rssBytes())
			}
		}
	}()
	return p
}

func (p *peaks) end() (heap, rss uint64) {
	close(p.stop)
	p.wg.Wait()
	return p.heap, p.rss
}

// BenchmarkExportSensorYear streams a sensor-year (3,153,600 readings, one
// every 10 s, built with generate_series in the benchmark's own schema)
// through the export handler over real HTTP into a counting discard, and
// reports rows per second and the peak heap and RSS during the export;
// the reference, measured in the same run on the same rows, is PostgreSQL
// writing them as CSV itself (COPY ... TO STDOUT WITH CSV through pgx's
// CopyTo), the least any export can cost.
func BenchmarkExportSensorYear(b *testing.B) {
	e := newEnv(b, nil)
	ctx := context.Background()
	c := e.client(b, "bench", "Europe/Berlin")
	s := e.sensor(b, c, "year", "A year")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const rows = 365 * 24 * 360
	t0 := time.Now()
	e.bulk(b, s, start, rows)
	_, err := e.db.Exec(ctx, `VACUUM ANALYZE readings`)
	require.NoError(b, err)
	fmt.Fprintf(os.Stderr, "export bench: %d readings built in %s\n", rows, time.Since(t0).Round(time.Second))
	from, to := start.Format(time.DateOnly), start.AddDate(1, 0, 0).Format(time.DateOnly)

	copyCSV := func() (int64, time.Duration) {
		conn, err := e.db.Acquire(ctx)
		require.NoError(b, err)
		defer conn.Release()
		var sink countingDiscard
		t := time.Now()
		_, err = conn.Conn().PgConn().CopyTo(ctx, &sink, fmt.Sprintf(`COPY (SELECT measured_at, value FROM readings
			WHERE sensor_id = '%s' AND measured_at >= '%s' AND measured_at < '%s' ORDER BY measured_at) TO STDOUT WITH CSV`,
			s, start.Format(time.RFC3339), start.AddDate(1, 0, 0).Format(time.RFC3339)))
		require.NoError(b, err)
		return sink.n, time.Since(t)
	}
	export := func() (n int64, d time.Duration, heap, rss uint64) {
		runtime.GC()
		p := samplePeaks()
		t := time.Now()
		resp := e.get(b, "admin", "/sensors/"+s+"/export.csv", query("from", from, "to", to))
		require.Equal(b, http.StatusOK, resp.StatusCode)
		var sink countingDiscard
		_, err := io.Copy(&sink, resp.Body)
		require.NoError(b, err)
		resp.Body.Close()
		d = time.Since(t)
		heap, rss = p.end()
		return sink.n, d, heap, rss
	}
	copyCSV() // warm the cache: both read the rows from memory
	b.ResetTimer()
	for range b.N {
		refBytes, refTime := copyCSV()
		n, d, heap, rss := export()
		rowsPerSec := float64(rows) / d.Seconds()
		refRowsPerSec := float64(rows) / refTime.Seconds()
		b.ReportMetric(rowsPerSec, "rows/s")
		b.ReportMetric(float64(heap)/(1<<20), "heap-peak-MiB")
		b.ReportMetric(float64(rss)/(1<<20), "rss-peak-MiB")
		b.ReportMetric(d.Seconds()/refTime.Seconds(), "x-copy-time")
		fmt.Fprintf(os.Stderr, "export bench: export %d rows, %.1f MB in %s (%.0f rows/s, %.1f MB/s); heap peak %.1f MiB, RSS peak %.1f MiB\n",
			rows, float64(n)/1e6, d.Round(time.Millisecond), rowsPerSec, float64(n)/1e6/d.Seconds(), float64(heap)/(1<<20), float64(rss)/(1<<20))
		fmt.Fprintf(os.Stderr, "export bench: reference COPY TO STDOUT WITH CSV %.1f MB in %s (%.0f rows/s); export takes %.2fx its time\n",
			float64(refBytes)/1e6, refTime.Round(time.Millisecond), refRowsPerSec, d.Seconds()/refTime.Seconds())
	}
}
