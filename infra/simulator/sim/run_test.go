package sim_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
	"github.com/tempwatch/tempwatch/infra/simulator/sim"
)

func TestRunPublishesAtRateThroughMosquitto(t *testing.T) {
	broker := mosquittotest.MustStart(t)
	var got atomic.Int64
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("sim-test-sub"))
	require.True(t, sub.Connect().WaitTimeout(5*time.Second))
	defer sub.Disconnect(100)
	require.True(t, sub.Subscribe("tempwatch/+/sensors/+/readings", 1, func(paho.Client, paho.Message) { got.Add(1) }).WaitTimeout(5*time.Second))

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("sim-test-pub"))
	require.True(t, pub.Connect().WaitTimeout(5*time.Second))
	defer pub.Disconnect(100)
	gen := sim.NewGenerator(sim.Fleet(2, 3, 1), sim.Mix{}, 1)
	start := time.Now()
	n, err := sim.Run(context.Background(), gen, 200, time.Second, func(_ context.Context, m sim.Message) error {
		t := pub.Publish(m.Topic, 1, false, m.Payload)
		t.Wait()
		return t.Error()
	})
	require.NoError(t, err)
	assert.InDelta(t, 200, n, 20, "about rate × duration messages")
	assert.GreaterOrEqual(t, time.Since(start), time.Second)
	require.Eventually(t, func() bool { return got.Load() == int64(n) }, 5*time.Second, 10*time.Millisecond)
}
