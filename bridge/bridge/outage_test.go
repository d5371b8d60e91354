package bridge_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The outage budget of the shipped broker configurations (README, "Broker
// configuration"): the bridge away for ten minutes at 200 readings/s.
// The tests publish the same number of readings as fast as they can
// instead of over ten minutes: what the broker must hold is a count (and
// bytes), not a duration.
const budgetMessages = 200 * 10 * 60

const (
	bridgeUser  = "tempwatch-bridge"
	bridgePass  = "bridge-test-password"
	deviceUser  = "acme/cr-1" // the device of the shipped ACL example
	deviceKey   = "twk_acme-1-test"
	deviceTopic = "tempwatch/acme/sensors/cr-1/readings"
)

func shippedMosquitto(t *testing.T) *mosquittotest.Shipped {
	t.Helper()
	dir := filepath.Join("..", "..", "infra", "mosquitto")
	return mosquittotest.MustStartShipped(t, filepath.Join(dir, "tempwatch.conf"), filepath.Join(dir, "tempwatch.acl.example"),
		map[string]string{bridgeUser: bridgePass, deviceUser: deviceKey})
}

func shippedBridgeEnv() map[string]string {
	// The bridge's own defaults for the window, as compose runs it.
	return map[string]string{"MQTT_USERNAME": bridgeUser, "MQTT_PASSWORD": bridgePass,
		"BATCH_SIZE": "500", "MAX_IN_FLIGHT": "2000", "BATCH_TIMEOUT": "200ms"}
}

// publishAsDevice publishes readings [from, to) at QoS 1 as the device,
// with mosquitto_pub reading one payload per line: it exits once every
// PUBACK is in, so every reading is then in the broker's care. One
// mosquitto_pub sends fewer messages than there are packet ids: past the
// wrap it takes an earlier PUBACK of its last id for the last one and
// exits with messages unsent.
func publishAsDevice(t *testing.T, addr string, from, to int) {
	t.Helper()
	const perProcess = 50_000
	for ; to-from > perProcess; from += perProcess {
		publishAsDevice(t, addr, from, from+perProcess)
	}
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command("mosquitto_pub", "-h", host, "-p", port, "-i", deviceUser, "-u", deviceUser, "-P", deviceKey,
		"-q", "1", "-t", deviceTopic, "-l")
	var lines strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&lines, "{\"value\":%d}\n", i)
	}
	cmd.Stdin = strings.NewReader(lines.String())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "mosquitto_pub: %s", out)
}

// waitAllStoredOnce waits while the function keeps storing (until it has
// every reading, or stored nothing for 15 s), then fails
// naming how many readings are missing or stored twice.
func waitAllStoredOnce(t *testing.T, f *fakeFunction, want map[string]int) {
	t.Helper()
	idle := time.NewTimer(15 * time.Second)
	defer idle.Stop()
	for waiting := true; waiting; {
		if _, got := f.snapshot(); len(got) >= len(want) {
			break
		}
		select {
		case <-f.stores:
			idle.Reset(15 * time.Second)
		case <-idle.C:
			waiting = false
		}
	}
	_, got := f.snapshot()
	missing, twice, unexpected := 0, 0, 0
	for k := range want {
		switch got[k] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	for k := range got {
		if want[k] == 0 {
			unexpected++
		}
	}
	assert.Zero(t, missing, "readings lost of %d", len(want))
	assert.Zero(t, twice, "readings stored more than once")
	assert.Zero(t, unexpected, "readings nobody published")
}

// TestShippedMosquittoKeepsTheOutageBudget stops the bridge, publishes the
// outage budget's readings while it is away, and starts it again: the
// shipped queue must hold every one, and each is stored once.
func TestShippedMosquittoKeepsTheOutageBudget(t *testing.T) {
	broker := shippedMosquitto(t)
	f, endpoint := newFake(t)
	first := startBridge(t, broker.URL, endpoint, shippedBridgeEnv()) // the session exists from here
	first.stop()

	publishAsDevice(t, broker.Addr, 0, budgetMessages)

	startBridge(t, broker.URL, endpoint, shippedBridgeEnv())
	waitAllStoredOnce(t, f, payloads(0, budgetMessages))
}

// TestShippedMosquittoKeepsTheQueueThroughARestart: with persistence on, a
// broker stopped gracefully while the bridge is away keeps the queue.
func TestShippedMosquittoKeepsTheQueueThroughARestart(t *testing.T) {
	broker := shippedMosquitto(t)
	f, endpoint := newFake(t)
	startBridge(t, broker.URL, endpoint, shippedBridgeEnv()).stop()
	publishAsDevice(t, broker.Addr, 0, 5000)

	broker.Restart(t)

	startBridge(t, broker.URL, endpoint, shippedBridgeEnv())
	waitAllStoredOnce(t, f, payloads(0, 5000))
}

// TestShippedMosquittoRefusesOversizedPublishes: a 200 KiB publish ends the
// device's connection unacknowledged and never reaches the bridge; a
// payload at the limit is stored.
func TestShippedMosquittoRefusesOversizedPublishes(t *testing.T) {
	broker := shippedMosquitto(t)
	f, endpoint := newFake(t)
	startBridge(t, broker.URL, endpoint, shippedBridgeEnv())

	lost := make(chan struct{}, 1)
	opts := paho.NewClientOptions().AddBroker(broker.URL).SetClientID(deviceUser).SetUsername(deviceUser).SetPassword(deviceKey).
		SetAutoReconnect(false).SetConnectionLostHandler(func(paho.Client, error) { lost <- struct{}{} })
	dev := paho.NewClient(opts)
	require.True(t, dev.Connect().WaitTimeout(5*time.Second))
	tok := dev.Publish(deviceTopic, 1, false, make([]byte, 200<<10))
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("a 200 KiB publish did not end the connection")
	}
	assert.False(t, tok.WaitTimeout(time.Second) && tok.Error() == nil, "a refused publish is never acknowledged")

	full := `{"value":1,"pad":"` + strings.Repeat("x", tempwatch.MaxPayloadBytes-len(`{"value":1,"pad":""}`)) + `"}`
	require.Len(t, full, tempwatch.MaxPayloadBytes)
	dev = paho.NewClient(opts.SetConnectionLostHandler(nil))
	require.True(t, dev.Connect().WaitTimeout(5*time.Second))
	defer dev.Disconnect(100)
	require.True(t, dev.Publish(deviceTopic, 1, false, full).WaitTimeout(5*time.Second))
	waitAllStoredOnce(t, f, map[string]int{full: 1})
}
