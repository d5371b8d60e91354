package mqtt_test

import (
	"path/filepath"
	"testing"

	"github.com/tempwatch/tempwatch/bridge/mqtt/mosquittotest"
	"github.com/tempwatch/tempwatch/bridge/mqtt/mqtttest"
)

// TestContractMosquitto holds the client to the broker contract against a
// private Mosquitto on the shipped configuration (authentication, ACL,
// window, queue and packet limits as deployed).
func TestContractMosquitto(t *testing.T) {
	const bridgePass, deviceKey = "contract-bridge-password-0123456789", "twk_acme-1-contract"
	dir := filepath.Join("..", "..", "infra", "mosquitto")
	broker := mosquittotest.MustStartShipped(t, filepath.Join(dir, "tempwatch.conf"), filepath.Join(dir, "tempwatch.acl.example"),
		map[string]string{"tempwatch-bridge": bridgePass, "acme/cr-1": deviceKey})
	mqtttest.RunContract(t, mqtttest.Broker{Addr: broker.Addr,
		Username: "tempwatch-bridge", Password: bridgePass, ClientIDPrefix: "tempwatch-bridge",
		Topic:       "tempwatch/acme/sensors/cr-1/readings",
		PublisherID: "acme/cr-1", PublisherUsername: "acme/cr-1", PublisherPassword: deviceKey})
}
