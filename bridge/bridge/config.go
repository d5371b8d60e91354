// Package bridge wires the MQTT subscription, the batcher and the ingest
// function's Invoke API into the long-running bridge process.
package bridge

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tempwatch/tempwatch/shared/config"
)

// DefaultTopic is what devices publish to.
const DefaultTopic = "tempwatch/+/sensors/+/readings"

// Config is the bridge's configuration, read from the environment.
type Config struct {
	MQTTURL        string
	MQTTClientID   string
	MQTTUsername   string
	MQTTPassword   string
	MQTTTopic      string
	SharedGroup    string
	CleanSession   bool
	Function       string
	LambdaEndpoint string
	Region         string
	BatchSize      int
	BatchTimeout   time.Duration
	BatchIdle      time.Duration
	// BatchMaxBytes caps a batch's Invoke request, its encoding included.
	BatchMaxBytes int
	MaxInFlight   int
	// MaxAttempts is how many attempts a message may fail on its own
	// before it is refused (dead-lettered).
	MaxAttempts     int
	RetryBase       time.Duration
	RetryMax        time.Duration
	ShutdownTimeout time.Duration
	MetricsAddr     string
	LogLevel        string
	// CPUProfile, when set, is where Run writes a CPU profile of itself.
	CPUProfile string
	// Broker is what the broker is stated to allow (brokercheck.go).
	Broker BrokerLimits
}

// Load reads and validates the configuration, naming every bad variable.
func Load(getenv config.Getenv) (Config, error) {
	r := config.NewReader(getenv)
	c := Config{
		MQTTURL:         r.URL("MQTT_URL", "tcp://127.0.0.1:1883", "tcp", "mqtt", "ssl", "tls", "mqtts"),
		MQTTClientID:    r.String("MQTT_CLIENT_ID", "tempwatch-bridge"),
		MQTTUsername:    r.String("MQTT_USERNAME", ""),
		MQTTPassword:    r.String("MQTT_PASSWORD", ""),
		MQTTTopic:       r.String("MQTT_TOPIC", DefaultTopic),
		SharedGroup:     r.String("MQTT_SHARED_GROUP", ""),
		CleanSession:    r.Bool("MQTT_CLEAN_SESSION", false),
		Function:        r.String("INGEST_FUNCTION_NAME", "ingest"),
		Region:          r.String("AWS_REGION", "us-east-1"),
		BatchSize:       r.Int("BATCH_SIZE", 500, 1, 10000),
		BatchTimeout:    r.Duration("BATCH_TIMEOUT", 200*time.Millisecond, time.Millisecond, time.Minute),
		BatchIdle:       r.Duration("BATCH_IDLE", 20*time.Millisecond, 0, time.Minute),
		BatchMaxBytes:   readBytes(r, "BATCH_MAX_BYTES", DefaultBatchMaxBytes, MinBatchMaxBytes, InvokeLimitBytes),
		MaxInFlight:     r.Int("MAX_IN_FLIGHT", 2000, 1, 1_000_000),
		MaxAttempts:     r.Int("MAX_ATTEMPTS", 5, 1, 1000),
		RetryBase:       r.Duration("RETRY_BASE", 200*time.Millisecond, time.Millisecond, time.Minute),
		RetryMax:        r.Duration("RETRY_MAX", 30*time.Second, time.Millisecond, time.Hour),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", 10*time.Second, 0, 10*time.Minute),
		MetricsAddr:     r.String("METRICS_ADDR", ":8081"),
		LogLevel:        r.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		CPUProfile:      r.String("BRIDGE_CPUPROFILE", ""),
		Broker:          loadBrokerLimits(r),
	}
	if getenv("LAMBDA_ENDPOINT") != "" { // unset: AWS's own endpoint
		c.LambdaEndpoint = r.URL("LAMBDA_ENDPOINT", "", "http", "https")
	}
	var errs []string
	if err := r.Err(); err != nil {
		errs = append(errs, err.Error())
	}
	if strings.HasPrefix(c.MQTTTopic, "$share/") {
		errs = append(errs, "config: MQTT_TOPIC must be the plain topic; set MQTT_SHARED_GROUP for a shared subscription")
	}
	if strings.ContainsAny(c.SharedGroup, "/+#") {
		errs = append(errs, fmt.Sprintf("config: MQTT_SHARED_GROUP = %q must not contain '/', '+' or '#'", c.SharedGroup))
	}
	if c.MaxInFlight < c.BatchSize {
		errs = append(errs, fmt.Sprintf("config: MAX_IN_FLIGHT = %d must be at least BATCH_SIZE = %d", c.MaxInFlight, c.BatchSize))
	}
	if c.RetryMax < c.RetryBase {
		errs = append(errs, fmt.Sprintf("config: RETRY_MAX = %s must be at least RETRY_BASE = %s", c.RetryMax, c.RetryBase))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return c, nil
}

// Limits of BATCH_MAX_BYTES.
const (
	// InvokeLimitBytes is Lambda's limit on a synchronous invocation's
	// request.
	InvokeLimitBytes = 6 << 20
	// DefaultBatchMaxBytes leaves a margin under it for what a proxy or an
	// emulator may count differently.
	DefaultBatchMaxBytes = 5 << 20
	// MinBatchMaxBytes holds one message at the payload limit, base64 and
	// all, with room for a long topic.
	MinBatchMaxBytes = 256 << 10
)

// readBytes reads name as a byte count within [lo, hi]: digits, with an
// optional unit KiB or MiB.
func readBytes(r *config.Reader, name string, def, lo, hi int) int {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	num, unit := v, 1
	for _, u := range []struct {
		suffix string
		unit   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			num, unit = strings.TrimSpace(n), u.unit
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		r.Fail(name, fmt.Sprintf("= %q is not a byte count (e.g. 5242880, 5MiB, 512KiB)", v))
		return def
	}
	if n > hi/unit || n*unit < lo {
		r.Fail(name, fmt.Sprintf("= %q is out of range [%d, %d] bytes", v, lo, hi))
		return def
	}
	return n * unit
}

// Workers is how many invocations are under way at once: enough to keep
// MAX_IN_FLIGHT messages moving in full batches.
func (c Config) Workers() int { return max(1, c.MaxInFlight/c.BatchSize) }

// ReadPause is how long the MQTT connection waits after a short read for
// more messages (mqtt.Options.ReadPause): a few milliseconds, so a steady
// stream comes in dozens of messages per read, and at most a quarter of
// BATCH_IDLE, so the pauses never look like a quiet stream and close
// batches early.
func (c Config) ReadPause() time.Duration {
	if c.BatchIdle > 0 {
		return min(5*time.Millisecond, c.BatchIdle/4)
	}
	return 5 * time.Millisecond
}
