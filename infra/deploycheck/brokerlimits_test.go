package deploycheck_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/deploycheck"
)

func TestCheckBrokerLimitsFindsProblems(t *testing.T) {
	root := repoRoot(t)
	emqx := func(old, new string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			mustEdit(t, filepath.Join(dir, deploycheck.EMQXConfig), func(s string) string { return strings.Replace(s, old, new, 1) })
		}
	}
	mosquitto := func(old, new string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			mustEdit(t, filepath.Join(dir, deploycheck.MosquittoConfig), func(s string) string { return strings.Replace(s, old, new, 1) })
		}
	}
	compose := func(old, new string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			mustEdit(t, filepath.Join(dir, deploycheck.ComposeFile), func(s string) string { return strings.Replace(s, old, new, 1) })
		}
	}
	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{"emqx queue under the budget", emqx("max_mqueue_len = 120000", "max_mqueue_len = 119999"), []string{"mqtt.max_mqueue_len = 119999 is under the outage budget of 120000"}},
		{"emqx queue left at its default", emqx("max_mqueue_len = 120000", ""), []string{"mqtt.max_mqueue_len is not set"}},
		{"emqx queues qos 0", emqx("mqueue_store_qos0 = false", "mqueue_store_qos0 = true"), []string{"mqueue_store_qos0 must be false"}},
		{"emqx window under MAX_IN_FLIGHT", emqx("max_inflight = 2000", "max_inflight = 32"), []string{"mqtt.max_inflight = 32 is under the bridge's MAX_IN_FLIGHT = 2000"}},
		{"bridge window raised past emqx's", compose("BATCH_SIZE: ${BATCH_SIZE:-100}", "BATCH_SIZE: ${BATCH_SIZE:-100}\n      MAX_IN_FLIGHT: \"4000\""), []string{"max_inflight = 2000 is under the bridge's MAX_IN_FLIGHT = 4000", "max_inflight_messages 2000"}},
		{"bridge states another window", compose(`BROKER_MAX_INFLIGHT: "2000"`, `BROKER_MAX_INFLIGHT: "3000"`), []string{"the compose bridge states BROKER_MAX_INFLIGHT = 3000"}},
		{"emqx packet under a full payload", emqx("max_packet_size = 65KB", "max_packet_size = 64KB"), []string{"mqtt.max_packet_size = 65536 bytes"}},
		{"emqx packet unbounded", emqx("max_packet_size = 65KB", "max_packet_size = 1MB"), []string{"mqtt.max_packet_size = 1048576 bytes"}},
		{"emqx session expires within the outage", emqx("session_expiry_interval = 2h", "session_expiry_interval = 5m"), []string{"session_expiry_interval = 5m must outlast"}},
		{"emqx heap kills the session", emqx("max_heap_size = 256MB", "max_heap_size = 32MB"), []string{"force_shutdown.max_heap_size = 32MB kills the bridge's session"}},
		{"emqx limit overridden in compose", compose("EMQX_PROMETHEUS__ENABLE_BASIC_AUTH", "EMQX_MQTT__MAX_INFLIGHT: \"32\"\n      EMQX_PROMETHEUS__ENABLE_BASIC_AUTH"), []string{"service emqx sets EMQX_MQTT__MAX_INFLIGHT"}},
		{"emqx setting twice", emqx("max_inflight = 2000", "max_inflight = 2000\n  max_inflight = 3000"), []string{"mqtt.max_inflight is set twice"}},
		{"mosquitto queue under the budget", mosquitto("max_queued_messages 120000", "max_queued_messages 10000"), []string{"max_queued_messages 10000 is not a bound covering the outage budget"}},
		{"mosquitto queue unbounded", mosquitto("max_queued_messages 120000", "max_queued_messages 0"), []string{"max_queued_messages 0 is not a bound"}},
		{"mosquitto bytes cut the budget", mosquitto("max_queued_bytes 122880000", "max_queued_bytes 1000000"), []string{"max_queued_bytes 1000000"}},
		{"mosquitto default window", mosquitto("max_inflight_messages 2000", "max_inflight_messages 20"), []string{"max_inflight_messages 20 is not a window"}},
		{"mosquitto packet unlimited", mosquitto("max_packet_size 66560", "max_packet_size 0"), []string{"max_packet_size = 0 bytes"}},
		{"mosquitto without persistence", mosquitto("persistence true", "persistence false"), []string{"persistence must be true"}},
		{"mosquitto saves only at shutdown", mosquitto("autosave_interval 5", "autosave_interval 0"), []string{"autosave_interval 0"}},
		{"mosquitto anonymous", mosquitto("allow_anonymous false", "allow_anonymous true"), []string{"allow_anonymous must be false"}},
		{"mosquitto no acl", mosquitto("acl_file /etc/mosquitto/tempwatch.acl", ""), []string{"acl_file is not set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := MustCopyTree(t, root)
			tt.break_(t, dir)
			errs := deploycheck.CheckBrokerLimits(context.Background(), dir)
			for _, w := range tt.want {
				assertHasError(t, errs, w)
			}
		})
	}
}

func TestParseHOCON(t *testing.T) {
	write := func(t *testing.T, text string) string {
		p := filepath.Join(t.TempDir(), "x.conf")
		mustWrite(t, p, text)
		return p
	}
	conf, err := deploycheck.ParseHOCON(write(t, `
## comment
node {
  name = "emqx@127.0.0.1" # trailing comment
}
listeners.tcp.default {
  bind = "0.0.0.0:1883"
}
force_shutdown { max_heap_size = 64MB }
authentication = [
  {
    url = "http://x/#not-a-comment"
    headers {
      "content-type" = "application/json"
    }
  }
]
mqtt {
  max_inflight = 10
}
`))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"node.name": "emqx@127.0.0.1", "listeners.tcp.default.bind": "0.0.0.0:1883",
		"force_shutdown.max_heap_size": "64MB", "mqtt.max_inflight": "10",
	}, conf, "array elements are not returned")

	for name, text := range map[string]string{
		"set twice":             "mqtt { max_inflight = 1 }\nmqtt.max_inflight = 2\n",
		"value over lines":      "mqtt {\n  max_inflight =\n    10\n}\n",
		"include":               "include \"other.conf\"\n",
		"block left open":       "mqtt {\n",
		"closes nothing":        "}\n",
		"inline object":         "mqtt = {max_inflight = 1, max_mqueue_len = 2}\n",
		"unquoted substitution": "mqtt { max_inflight = ${X} }\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := deploycheck.ParseHOCON(write(t, text))
			assert.Error(t, err)
		})
	}
}
