package batcher_test

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/batcher"
)

// nextAsync calls Next in a goroutine of its own and sends its batch.
func nextAsync(b *batcher.Batcher[int]) <-chan []int {
	got := make(chan []int, 1)
	go func() {
		batch, _ := b.Next()
		got <- batch
	}()
	return got
}

// ready returns the batch Next has at once. Call it in a synctest bubble:
// the batcher's timers run on the bubble's clock, which moves only when
// every goroutine waits, so "at once" is exact and a batch that is not
// there never will be without time passing.
func ready(t *testing.T, b *batcher.Batcher[int]) []int {
	t.Helper()
	got := nextAsync(b)
	synctest.Wait()
	select {
	case batch := <-got:
		return batch
	default:
		t.Fatal("no batch ready")
		return nil
	}
}

func addAll(t *testing.T, b *batcher.Batcher[int], from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		require.True(t, b.Add(i))
	}
}

func TestBatcherClosesBatches(t *testing.T) {
	tests := []struct {
		name   string
		cfg    batcher.Config[int]
		send   int
		want   [][]int
		closes time.Duration // when the last wanted batch closes
	}{
		{"on size", batcher.Config[int]{Size: 3, Timeout: time.Hour}, 7, [][]int{{0, 1, 2}, {3, 4, 5}}, 0},
		{"on timeout", batcher.Config[int]{Size: 100, Timeout: 30 * time.Millisecond}, 5, [][]int{{0, 1, 2, 3, 4}}, 30 * time.Millisecond},
		{"on idle", batcher.Config[int]{Size: 100, Timeout: time.Hour, Idle: 20 * time.Millisecond}, 4, [][]int{{0, 1, 2, 3}}, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := batcher.New[int](tt.cfg)
				addAll(t, b, 0, tt.send)
				if tt.closes > 0 {
					time.Sleep(tt.closes - time.Nanosecond)
					synctest.Wait()
					got := nextAsync(b)
					synctest.Wait()
					assert.Empty(t, got, "closed before its time")
					time.Sleep(time.Nanosecond)
					assert.Equal(t, tt.want[0], <-got)
				} else {
					for _, want := range tt.want {
						assert.Equal(t, want, ready(t, b))
					}
				}
				b.Close()
				if rest, ok := b.Next(); ok {
					assert.Len(t, rest, tt.send%tt.cfg.Size, "Close hands out the open batch, which neither size nor time closed")
				}
			})
		})
	}
}

func TestBatcherIdleWaitsForTheLastItem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := batcher.New[int](batcher.Config[int]{Size: 100, Timeout: time.Hour, Idle: 100 * time.Millisecond})
		start := time.Now()
		got := nextAsync(b)
		for i := range 8 { // 10 ms apart: never idle for 100 ms
			require.True(t, b.Add(i))
			time.Sleep(10 * time.Millisecond)
		}
		assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7}, <-got, "the batch stayed open while items kept arriving")
		assert.Equal(t, 7*10*time.Millisecond+100*time.Millisecond, time.Since(start), "and closed Idle after the last")
	})
}

func TestBatcherTimeoutBoundsABusyBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := batcher.New[int](batcher.Config[int]{Size: 1000, Timeout: 50 * time.Millisecond, Idle: 30 * time.Millisecond})
		start := time.Now()
		got := nextAsync(b)
		for i := 0; i < 40; i++ { // every 5 ms: never idle
			require.True(t, b.Add(i))
			time.Sleep(5 * time.Millisecond)
		}
		first := <-got
		assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, first[:10], "closed Timeout after its first item, though items kept coming")
		assert.LessOrEqual(t, len(first), 11, "the item added as Timeout ran out may go either way")
		assert.Equal(t, 200*time.Millisecond, time.Since(start))
		b.Close()
	})
}

func TestBatcherHoldsAtMostMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := batcher.New[int](batcher.Config[int]{Size: 2, Timeout: time.Hour, Max: 4})
		addAll(t, b, 0, 9)
		assert.Equal(t, []int{0, 1}, ready(t, b))
		assert.Equal(t, []int{2, 3}, ready(t, b))
		assert.Equal(t, 9, b.Held())

		waiting := nextAsync(b)
		synctest.Wait()
		assert.Empty(t, waiting, "Next returned a batch with Max items held")
		b.Done(2) // 0 and 1 acked: 4 and 5 move in, in order
		assert.Equal(t, []int{4, 5}, <-waiting)
		b.Done(1)
		addAll(t, b, 9, 10) // queues behind 6..8, not ahead of them
		b.Done(1)
		assert.Equal(t, []int{6, 7}, ready(t, b))
		assert.Equal(t, 6, b.Held(), "4..9")

		assert.Equal(t, 2, b.Close(), "8 and 9 waited beyond Max: dropped, the broker redelivers them")
		_, ok := b.Next()
		assert.False(t, ok)
	})
}

func TestBatcherCloseHandsOutTheOpenBatchAndStopsTaking(t *testing.T) {
	b := batcher.New[int](batcher.Config[int]{Size: 10, Timeout: time.Hour})
	addAll(t, b, 0, 3)
	var wg sync.WaitGroup
	got := make(chan []int, 4)
	for range 4 { // every waiting Next returns after Close
		wg.Go(func() {
			for batch, ok := b.Next(); ok; batch, ok = b.Next() {
				got <- batch
			}
		})
	}
	assert.Zero(t, b.Close())
	assert.False(t, b.Add(3), "nothing is taken after Close")
	wg.Wait()
	close(got)
	var all [][]int
	for batch := range got {
		all = append(all, batch)
	}
	assert.Equal(t, [][]int{{0, 1, 2}}, all)
}

func TestBatcherHandsEachItemOutOnce(t *testing.T) {
	const n = 5000
	b := batcher.New[int](batcher.Config[int]{Size: 7, Timeout: time.Millisecond, Idle: 100 * time.Microsecond, Max: 50})
	var (
		mu  sync.Mutex
		got []int
		wg  sync.WaitGroup
	)
	for range 3 {
		wg.Go(func() {
			for batch, ok := b.Next(); ok; batch, ok = b.Next() {
				assert.LessOrEqual(t, len(batch), 7)
				mu.Lock()
				got = append(got, batch...)
				mu.Unlock()
				b.Done(len(batch))
			}
		})
	}
	addAll(t, b, 0, n)
	require.Eventually(t, func() bool { return b.Held() == 0 }, 5*time.Second, time.Millisecond)
	b.Close()
	wg.Wait()
	require.Len(t, got, n)
	seen := make([]bool, n)
	for _, v := range got {
		require.False(t, seen[v], "%d handed out twice", v)
		seen[v] = true
	}
}

func TestBatcherCapsBatchesInBytes(t *testing.T) {
	tests := []struct {
		name    string
		size    int // items
		weights []int
		want    [][]int // weights, batch by batch
	}{
		{"fills up to the cap", 100, []int{4, 4, 2, 4, 4, 2}, [][]int{{4, 4, 2}, {4, 4, 2}}},
		{"an item that would go over opens the next", 100, []int{4, 4, 3, 1}, [][]int{{4, 4}, {3, 1}}},
		{"an item over the cap alone", 100, []int{1, 25, 1, 1}, [][]int{{1}, {25}, {1, 1}}},
		{"count closes first", 2, []int{1, 1, 1, 1}, [][]int{{1, 1}, {1, 1}}},
		{"weightless items are counted", 3, []int{0, 0, 0, 10}, [][]int{{0, 0, 0}, {10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := batcher.New(batcher.Config[int]{Size: tt.size, Timeout: time.Hour, MaxBytes: 10, Weight: func(w int) int { return w }})
			for _, w := range tt.weights {
				require.True(t, b.Add(w))
			}
			b.Close() // hands out the open batch
			var got [][]int
			for batch, ok := b.Next(); ok; batch, ok = b.Next() {
				got = append(got, batch)
			}
			assert.Equal(t, tt.want, got, "batches of weights %v under a cap of 10", tt.weights)
		})
	}
}

// Items waiting beyond Max move into batches by the same cap.
func TestBatcherCapsInBytesWhatWaitedBeyondMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := batcher.New(batcher.Config[int]{Size: 4, Timeout: time.Hour, Max: 20, MaxBytes: 10, Weight: func(w int) int { return w }})
		for range 30 { // 20 in batches of two, 10 waiting
			require.True(t, b.Add(5))
		}
		for range 10 {
			assert.Equal(t, []int{5, 5}, ready(t, b))
		}
		assert.Equal(t, 30, b.Held())
		b.Done(20)
		for range 5 {
			assert.Equal(t, []int{5, 5}, ready(t, b))
		}
	})
}
