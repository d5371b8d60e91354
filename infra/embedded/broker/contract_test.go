package broker_test

import (
	"strings"
	"testing"

	"github.com/tempwatch/tempwatch/bridge/mqtt/mqtttest"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
)

// TestContract holds the bridge's MQTT client to the broker contract
// against the embedded broker, with device authentication as devstack runs
// it: the bridge logs in with its credential, the publisher as a device.
func TestContract(t *testing.T) {
	url := mustStart(t)
	user := deviceauth.Username(a1.Ref())
	mqtttest.RunContract(t, mqtttest.Broker{Addr: strings.TrimPrefix(url, "tcp://"),
		Username: deviceauth.DefaultBridgeUsername, Password: bridgePass, ClientIDPrefix: deviceauth.DefaultBridgeClientIDPrefix,
		Topic:       a1.Ref().Topic(),
		PublisherID: user, PublisherUsername: user, PublisherPassword: keyA1})
}
