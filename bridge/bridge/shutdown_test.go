package bridge_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
)

// TestShutdownWhileFunctionHangs: every worker waits on a function that
// never answers and the batcher holds a full batch it cannot hand over; a
// stop must still end within SHUTDOWN_TIMEOUT, leaving the messages
// unacknowledged for the broker to redeliver.
func TestShutdownWhileFunctionHangs(t *testing.T) {
	t.Parallel()
	broker := mosquittotest.MustStart(t)
	f, endpoint := newFake(t)
	f.setAnswer(func(int) string { return "hang" })
	b := startBridge(t, broker.URL, endpoint, map[string]string{"BATCH_SIZE": "10", "MAX_IN_FLIGHT": "20", "SHUTDOWN_TIMEOUT": "200ms"})
	// Two batches hang in the two workers (10 messages, and 5 closed by the
	// batch timeout); then 5 more fill MAX_IN_FLIGHT and wait in a batch
	// the batcher cannot hand over.
	publish(t, broker.URL, 0, 15)
	require.Eventually(t, func() bool { calls, _ := f.snapshot(); return calls >= 2 }, 10*time.Second, 10*time.Millisecond)
	publish(t, broker.URL, 15, 20)
	// The 5 fill MAX_IN_FLIGHT: whether their batch is still open or closed
	// and waiting for a worker, the stop must end in time.
	require.Eventually(t, func() bool { return testutil.ToFloat64(b.b.Metrics().MessagesIn) == 20 }, 10*time.Second, 10*time.Millisecond)

	start := time.Now()
	stopped := make(chan struct{})
	go func() { b.stop(); close(stopped) }()
	select {
	case <-stopped:
		assert.Less(t, time.Since(start), 5*time.Second)
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge did not stop while its function hung")
	}
	_, stored := f.snapshot()
	assert.Empty(t, stored, "nothing was stored, so nothing may have been acked")
}
