package sim_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
	"github.com/tempwatch/tempwatch/infra/simulator/sim"
)

// mustAuthBroker starts a Mosquitto that refuses anonymous clients and
// lets each sensor of fleet log in with its Key and write only its topic,
// and a reader read them all.
func mustAuthBroker(t *testing.T, fleet []*sim.Sensor) *mosquittotest.Broker {
	t.Helper()
	dir := t.TempDir()
	passwd, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	require.NoError(t, os.WriteFile(passwd, nil, 0o600))
	rules := []string{"user reader", "topic read tempwatch/#"}
	add := func(user, pass string) {
		out, err := exec.Command("mosquitto_passwd", "-b", passwd, user, pass).CombinedOutput()
		require.NoError(t, err, "mosquitto_passwd: %s", out)
	}
	add("reader", "reader-password")
	for _, s := range fleet {
		add(s.Username(), s.Key)
		rules = append(rules, "user "+s.Username(), "topic write "+s.Topic())
	}
	require.NoError(t, os.WriteFile(acl, []byte(strings.Join(rules, "\n")+"\n"), 0o600))
	// "user root": started as root, Mosquitto would read the files as the
	// mosquitto user, who may not enter the test's directory.
	return mosquittotest.MustStart(t, "user root", "allow_anonymous false", "password_file "+passwd, "acl_file "+acl)
}

func keyed(fleet []*sim.Sensor) []*sim.Sensor {
	for i, s := range fleet {
		s.Key = fmt.Sprintf("twk_simulated-key-%03d", i)
	}
	return fleet
}

func TestDevicesPublishAsThemselves(t *testing.T) {
	fleet := keyed(sim.Fleet(2, 3, 1))
	broker := mustAuthBroker(t, fleet)

	// Distinct messages: QoS 1 may deliver one twice.
	var mu sync.Mutex
	got := map[string]bool{}
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("reader").SetUsername("reader").SetPassword("reader-password"))
	tok := sub.Connect()
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())
	defer sub.Disconnect(100)
	require.True(t, sub.Subscribe("tempwatch/+/sensors/+/readings", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		got[m.Topic()+" "+string(m.Payload())] = true
	}).WaitTimeout(5*time.Second))

	devices, err := sim.ConnectDevices(broker.URL, fleet)
	require.NoError(t, err)
	defer devices.Close()
	n, err := sim.Run(context.Background(), sim.NewGenerator(fleet, sim.Mix{}, 1), 200, 500*time.Millisecond, devices.Publish)
	require.NoError(t, err)
	require.Positive(t, n)
	// The broker's ACL lets a device write only its own topic: every
	// message arriving means each went out on its own sensor's connection.
	require.Eventually(t, func() bool { return received() == n }, 10*time.Second, 10*time.Millisecond, "published %d", n)

	assert.Error(t, devices.Publish(context.Background(), sim.Message{Topic: "tempwatch/other/sensors/x/readings"}),
		"a topic of no sensor of the fleet has no connection")
}

func TestDevicesWithAWrongKeyAreRefused(t *testing.T) {
	fleet := keyed(sim.Fleet(1, 2, 1))
	broker := mustAuthBroker(t, fleet)
	fleet[1].Key += "-rotated"
	_, err := sim.ConnectDevices(broker.URL, fleet)
	assert.Error(t, err, "a CONNECT refused is an error at once, not retried")
}
