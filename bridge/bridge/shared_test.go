package bridge_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
)

// Two bridges in one shared group split the stream: every message is
// stored by one of them, once. (What the broker does with a member that
// dies is the experiment in shared_experiment_test.go.)
func TestBridgesInASharedGroupSplitTheStream(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	fa, endpointA := newFake(t)
	fb, endpointB := newFake(t)
	env := func(id string) map[string]string {
		return map[string]string{"MQTT_SHARED_GROUP": "ingest", "MQTT_CLIENT_ID": id, "BATCH_SIZE": "10", "MAX_IN_FLIGHT": "20"}
	}
	a := startBridge(t, broker.URL, endpointA, env("bridge-a"))
	b := startBridge(t, broker.URL, endpointB, env("bridge-b"))
	publish(t, broker.URL, 0, 300)
	require.Eventually(t, func() bool {
		_, sa := fa.snapshot()
		_, sb := fb.snapshot()
		return len(sa)+len(sb) >= 300 && inFlight(t, a.b) == 0 && inFlight(t, b.b) == 0
	}, 20*time.Second, 10*time.Millisecond, "every message stored and settled")
	_, sa := fa.snapshot()
	_, sb := fb.snapshot()
	all := map[string]int{}
	for _, s := range []map[string]int{sa, sb} {
		for k, n := range s {
			all[k] += n
		}
	}
	assert.Equal(t, payloads(0, 300), all, "each message stored once, by one bridge")
	assert.NotEmpty(t, sa, "bridge A took a share")
	assert.NotEmpty(t, sb, "bridge B took a share")
}
