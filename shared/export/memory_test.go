package export_test

import (
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// heapSampler records the peak of the heap's live and not yet swept
// objects while it runs, read through runtime/metrics (no stop of the
// world), against the heap right after a collection.
type heapSampler struct {
	base, peak uint64
	stop       chan struct{}
	wg         sync.WaitGroup
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	runtime.GC()
	h := &heapSampler{base: heapNow(), stop: make(chan struct{})}
	h.peak = h.base
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
				h.peak = max(h.peak, heapNow())
			}
		}
	}()
	return h
}

// growth stops the sampler and returns the peak's rise over the base.
func (h *heapSampler) growth() uint64 {
	close(h.stop)
	h.wg.Wait()
	h.peak = max(h.peak, heapNow())
	return h.peak - h.base
}

// TestMemoryBounded: exporting 300,000 readings over real HTTP raises the
// heap's peak by less than maxGrowth, and about as much as exporting
// 30,000 does (within 1 MiB): memory does not follow the row count. A handler that held
// the rows (or the CSV, about 11 MB here) would pass neither check. Not
// parallel, so no other test's allocations are counted.
func TestMemoryBounded(t *testing.T) {
	const maxGrowth = 2 << 20
	e := newEnv(t, nil)
	c := e.client(t, "acme", "Europe/Berlin")
	small := e.sensor(t, c, "small", "Small")
	big := e.sensor(t, c, "big", "Big")
	e.bulk(t, small, mustTime(t, "2026-01-01T00:00:00Z"), 30_000)
	e.bulk(t, big, mustTime(t, "2026-01-01T00:00:00Z"), 300_000)

	export := func(sensor string) (rows int64, growth uint64) {
		h := startHeapSampler()
		resp := e.get(t, "admin", "/sensors/"+sensor+"/export.csv", query("from", "2026-01-01", "to", "2026-03-01"))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var sink countingDiscard
		_, err := io.Copy(&sink, resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		g := h.growth()
		return sink.n, g
	}
	export(small) // warm: pools, prepared statements, buffers
	smallBytes, smallGrowth := export(small)
	bigBytes, bigGrowth := export(big)
	t.Logf("30,000 rows (%d bytes): heap peak +%d KiB; 300,000 rows (%d bytes): heap peak +%d KiB",
		smallBytes, smallGrowth>>10, bigBytes, bigGrowth>>10)
	require.Greater(t, bigBytes, 9*smallBytes, "the big export is ten times the small one")
	assert.Less(t, bigGrowth, uint64(maxGrowth), "exporting 300,000 rows grew the heap's peak by %d KiB", bigGrowth>>10)
	assert.Less(t, bigGrowth, smallGrowth+1<<20, "10x the rows grew the heap's peak from %d KiB to %d KiB", smallGrowth>>10, bigGrowth>>10)
}
