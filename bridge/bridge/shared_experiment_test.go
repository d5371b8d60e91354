//go:build experiment

// This file is an experiment, not part of the suite: it records what
// Mosquitto does, not what the bridge does. Run it with
//
//	go test -tags experiment -run SharedSubscriptionMemberDies -v ./bridge/bridge/
//
// bridge/README.md ("Shared subscriptions") says what it showed.

package bridge_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
)

// TestSharedSubscriptionMemberDies records what Mosquitto does with the
// in-flight (unacknowledged) messages of a shared-subscription member that
// dies: two bridges share $share/ingest/...; bridge A's function hangs, so A
// holds its share unacked, then A goes away (and later comes back). Across
// members the broker orders nothing, so no sentinel can show that nothing
// more will come: it looks for 2 s each time, and the assertions are the
// observations of Mosquitto 2.0.11, to fail when a version behaves
// otherwise.
func TestSharedSubscriptionMemberDies(t *testing.T) {
	for _, clean := range []string{"false", "true"} {
		t.Run("clean_session="+clean, func(t *testing.T) {
			broker := mosquittotest.MustStart(t)
			fa, endpointA := newFake(t)
			fb, endpointB := newFake(t)
			fa.setAnswer(func(int) string { return "hang" })
			env := func(id string) map[string]string {
				return map[string]string{"MQTT_SHARED_GROUP": "ingest", "MQTT_CLIENT_ID": id, "MQTT_CLEAN_SESSION": clean,
					"SHUTDOWN_TIMEOUT": "50ms", "BATCH_SIZE": "10", "MAX_IN_FLIGHT": "20"}
			}
			a := startBridge(t, broker.URL, endpointA, env("bridge-a"))
			startBridge(t, broker.URL, endpointB, env("bridge-b"))

			publish(t, broker.URL, 0, 200)
			require.Eventually(t, func() bool { _, s := fb.snapshot(); return len(s) > 0 }, 10*time.Second, 10*time.Millisecond)
			a.stop() // A dies holding its unacked share
			publish(t, broker.URL, 200, 300)
			time.Sleep(2 * time.Second)
			_, storedB := fb.snapshot()
			survivor := len(storedB)
			t.Logf("clean_session=%s: survivor B stored %d of 300 after A died", clean, survivor)

			// A comes back with the same client id and a working function.
			fa.setAnswer(nil)
			startBridge(t, broker.URL, endpointA, env("bridge-a"))
			time.Sleep(2 * time.Second)
			_, storedA := fa.snapshot()
			t.Logf("clean_session=%s: restarted A stored %d more; total %d of 300", clean, len(storedA), survivor+len(storedA))
			for k := range storedA {
				assert.Zero(t, storedB[k], "no message stored by both bridges")
			}
			// Observed on Mosquitto 2.0: the survivor never receives the dead
			// member's in-flight messages. With a persistent session Mosquitto
			// keeps them, and keeps routing the dead member its round-robin
			// share, in that member's session until it reconnects; with a clean
			// session they are discarded when the member goes.
			assert.Less(t, survivor, 300, "Mosquitto does not hand a dead member's messages to the survivor")
			if clean == "false" {
				assert.Equal(t, 300, survivor+len(storedA), "with persistent sessions nothing is lost once A returns")
			} else {
				assert.Empty(t, storedA, "a clean session keeps nothing for the returning member")
				assert.Less(t, survivor, 300, "with clean sessions the dead member's in-flight messages are lost")
			}
		})
	}
}
