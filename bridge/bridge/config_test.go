package bridge_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/bridge"
	"github.com/tempwatch/tempwatch/shared/config"
)

func TestLoadDefaults(t *testing.T) {
	cfg, err := bridge.Load(config.MapEnv(nil))
	require.NoError(t, err)
	assert.Equal(t, "tcp://127.0.0.1:1883", cfg.MQTTURL)
	assert.Equal(t, bridge.DefaultTopic, cfg.MQTTTopic)
	assert.False(t, cfg.CleanSession, "persistent session by default")
	assert.Equal(t, 500, cfg.BatchSize)
	assert.Equal(t, 200*time.Millisecond, cfg.BatchTimeout)
	assert.Equal(t, ":8081", cfg.MetricsAddr)
	assert.Empty(t, cfg.LambdaEndpoint, "no endpoint means AWS")
	assert.Equal(t, 4, cfg.Workers())
	assert.Equal(t, 5<<20, cfg.BatchMaxBytes, "a margin under the invoke limit")
	assert.Less(t, cfg.BatchMaxBytes, bridge.InvokeLimitBytes)
	assert.Equal(t, 5, cfg.MaxAttempts)
	assert.Equal(t, 5*time.Millisecond, cfg.ReadPause())
}

func TestReadPauseStaysWellInsideBatchIdle(t *testing.T) {
	tests := []struct {
		idle string
		want time.Duration
	}{
		{"20ms", 5 * time.Millisecond},
		{"8ms", 2 * time.Millisecond},
		{"0s", 5 * time.Millisecond}, // idle closing is off
	}
	for _, tt := range tests {
		cfg, err := bridge.Load(config.MapEnv(map[string]string{"BATCH_IDLE": tt.idle}))
		require.NoError(t, err)
		assert.Equal(t, tt.want, cfg.ReadPause(), "BATCH_IDLE=%s", tt.idle)
	}
}

func TestLoadReadsByteCounts(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"5242880", 5 << 20},
		{"4MiB", 4 << 20},
		{"4 MiB", 4 << 20},
		{"512KiB", 512 << 10},
		{"6MiB", bridge.InvokeLimitBytes},
		{"256KiB", bridge.MinBatchMaxBytes},
	}
	for _, tt := range tests {
		cfg, err := bridge.Load(config.MapEnv(map[string]string{"BATCH_MAX_BYTES": tt.in}))
		require.NoError(t, err, "BATCH_MAX_BYTES=%s", tt.in)
		assert.Equal(t, tt.want, cfg.BatchMaxBytes, "BATCH_MAX_BYTES=%s", tt.in)
	}
}

func TestLoadRejectsBadValues(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"broker scheme", map[string]string{"MQTT_URL": "http://broker:1883"}, "MQTT_URL"},
		{"websocket: not spoken (bridge/mqtt's scope)", map[string]string{"MQTT_URL": "wss://broker:8084/mqtt"}, "MQTT_URL"},
		{"endpoint not a URL", map[string]string{"LAMBDA_ENDPOINT": "localhost:3001"}, "LAMBDA_ENDPOINT"},
		{"batch size zero", map[string]string{"BATCH_SIZE": "0"}, "BATCH_SIZE"},
		{"batch size word", map[string]string{"BATCH_SIZE": "many"}, "BATCH_SIZE"},
		{"timeout", map[string]string{"BATCH_TIMEOUT": "soon"}, "BATCH_TIMEOUT"},
		{"clean session", map[string]string{"MQTT_CLEAN_SESSION": "maybe"}, "MQTT_CLEAN_SESSION"},
		{"in flight below batch", map[string]string{"BATCH_SIZE": "500", "MAX_IN_FLIGHT": "100"}, "MAX_IN_FLIGHT"},
		{"shared group wildcard", map[string]string{"MQTT_SHARED_GROUP": "a/b"}, "MQTT_SHARED_GROUP"},
		{"topic already shared", map[string]string{"MQTT_TOPIC": "$share/g/tempwatch/#"}, "MQTT_TOPIC"},
		{"log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"retry cap below base", map[string]string{"RETRY_BASE": "2s", "RETRY_MAX": "1s"}, "RETRY_MAX"},
		{"batch bytes over the invoke limit", map[string]string{"BATCH_MAX_BYTES": "7MiB"}, "BATCH_MAX_BYTES"},
		{"batch bytes one over the invoke limit", map[string]string{"BATCH_MAX_BYTES": "6291457"}, "BATCH_MAX_BYTES"},
		{"batch bytes too small for one message", map[string]string{"BATCH_MAX_BYTES": "64KiB"}, "BATCH_MAX_BYTES"},
		{"batch bytes unit", map[string]string{"BATCH_MAX_BYTES": "5GB"}, "BATCH_MAX_BYTES"},
		{"batch bytes negative", map[string]string{"BATCH_MAX_BYTES": "-1MiB"}, "BATCH_MAX_BYTES"},
		{"batch bytes overflow", map[string]string{"BATCH_MAX_BYTES": "99999999999999999MiB"}, "BATCH_MAX_BYTES"},
		{"max attempts zero", map[string]string{"MAX_ATTEMPTS": "0"}, "MAX_ATTEMPTS"},
		{"max attempts word", map[string]string{"MAX_ATTEMPTS": "forever"}, "MAX_ATTEMPTS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bridge.Load(config.MapEnv(tt.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestLoadNamesEveryProblem(t *testing.T) {
	_, err := bridge.Load(config.MapEnv(map[string]string{"BATCH_SIZE": "x", "METRICS_ADDR": "", "LOG_LEVEL": "x", "MQTT_URL": "ftp://x",
		"BATCH_MAX_BYTES": "lots", "MAX_ATTEMPTS": "-1"}))
	require.Error(t, err)
	for _, name := range []string{"BATCH_SIZE", "LOG_LEVEL", "MQTT_URL", "BATCH_MAX_BYTES", "MAX_ATTEMPTS"} {
		assert.Contains(t, err.Error(), name)
	}
}
