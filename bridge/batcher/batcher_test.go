package batcher_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/batcher"
	"github.com/tempwatch/tempwatch/shared/telemetry"
)

func items(n int) []batcher.Item {
	out := make([]batcher.Item, n)
	for i := range out {
		out[i] = batcher.Item{Message: telemetry.Message{ID: strconv.Itoa(i)}, Ack: func() {}}
	}
	return out
}

func ids(b []batcher.Item) []string {
	var out []string
	for _, it := range b {
		out = append(out, it.Message.ID)
	}
	return out
}

func TestRunClosesBatches(t *testing.T) {
	tests := []struct {
		name  string
		cfg   batcher.Config
		send  int
		want  []int // batch sizes in order
		after time.Duration
	}{
		{"on size", batcher.Config{Size: 3, Timeout: time.Hour}, 7, []int{3, 3}, 50 * time.Millisecond},
		{"on timeout", batcher.Config{Size: 100, Timeout: 30 * time.Millisecond}, 5, []int{5}, 200 * time.Millisecond},
		{"on idle", batcher.Config{Size: 100, Timeout: time.Hour, Idle: 20 * time.Millisecond}, 4, []int{4}, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := make(chan batcher.Item, tt.send)
			out := make(chan []batcher.Item, 10)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { batcher.Run(ctx, tt.cfg, in, out); close(done) }()
			for _, it := range items(tt.send) {
				in <- it
			}
			time.Sleep(tt.after)
			var got []int
			for len(out) > 0 {
				got = append(got, len(<-out))
			}
			assert.Equal(t, tt.want, got, "batch sizes before shutdown")
			cancel()
			<-done
		})
	}
}

func TestRunFlushesOpenBatchAndBufferOnShutdown(t *testing.T) {
	in := make(chan batcher.Item, 10)
	out := make(chan []batcher.Item, 10)
	ctx, cancel := context.WithCancel(context.Background())
	for _, it := range items(5) {
		in <- it
	}
	cancel() // before Run even starts: everything buffered must still come out
	batcher.Run(ctx, batcher.Config{Size: 2, Timeout: time.Hour}, in, out)
	close(out)
	var got []string
	for b := range out {
		require.LessOrEqual(t, len(b), 2, "no batch exceeds Size")
		got = append(got, ids(b)...)
	}
	assert.Equal(t, []string{"0", "1", "2", "3", "4"}, got)
}

func TestRunReturnsWhenInputCloses(t *testing.T) {
	in := make(chan batcher.Item, 3)
	out := make(chan []batcher.Item, 3)
	for _, it := range items(2) {
		in <- it
	}
	close(in)
	batcher.Run(context.Background(), batcher.Config{Size: 10, Timeout: time.Hour}, in, out)
	require.Len(t, out, 1)
	assert.Equal(t, []string{"0", "1"}, ids(<-out))
}
