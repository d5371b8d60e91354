// Package e2e runs the ingest path end to end over real servers: a private
// embedded broker with device authentication (its own process), the bridge, infra/devstack's Lambda Invoke API and the ingest
// function's real bootstrap, PostgreSQL (behind a cuttable proxy), Redis and
// MongoDB (FerretDB).
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tempwatch/tempwatch/bridge/bridge"
	"github.com/tempwatch/tempwatch/bridge/invoker"
	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/embedded/broker/brokertest"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/faultproxy"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Options configure a Harness.
type Options struct {
	Root        string    // repository root
	DatabaseURL string    // PostgreSQL the function stores into (reached through the proxy)
	MongoURL    string    // empty starts devstack's embedded FerretDB
	Instances   int       // ingest function instances; default 2
	Logs        io.Writer // function and bridge logs; default discarded
	// DeviceCacheTTL bounds how long the broker accepts a rotated key;
	// default 30 s.
	DeviceCacheTTL time.Duration
}

// Harness is a running broker + ingest function behind the Invoke API.
type Harness struct {
	Broker      *brokertest.Broker
	Stack       *stack.Stack
	Proxy       *faultproxy.Proxy
	RedisPrefix string
	MongoDB     string // database name of the raw payloads
	// BridgePassword is the bridge's broker credential (username
	// deviceauth.DefaultBridgeUsername).
	BridgePassword string
	logs           io.Writer
	dir            string
	procs          []*exec.Cmd // bridge processes, killed by Close if still running
}

// Start brings everything up.
func Start(ctx context.Context, o Options) (*Harness, error) {
	if o.Logs == nil {
		o.Logs = io.Discard
	}
	dir, err := os.MkdirTemp("", "tempwatch-e2e-")
	if err != nil {
		return nil, err
	}
	h := &Harness{logs: o.Logs, dir: dir, RedisPrefix: "e2e:" + randomHex(4) + ":", MongoDB: "e2e_" + randomHex(4),
		BridgePassword: "e2e-bridge-" + randomHex(16)}
	ok := false
	defer func() {
		if !ok {
			h.Close()
		}
	}()
	// The broker checks device keys in PostgreSQL directly, not through the
	// proxy the tests cut: a database outage must not look like bad keys.
	brokerEnv := map[string]string{"DATABASE_URL": o.DatabaseURL, "REDIS_PREFIX": h.RedisPrefix, "MQTT_BRIDGE_PASSWORD": h.BridgePassword}
	if o.DeviceCacheTTL > 0 {
		brokerEnv["DEVICE_CACHE_TTL"] = o.DeviceCacheTTL.String()
	}
	if h.Broker, err = brokertest.Start(dir, brokerEnv); err != nil {
		return nil, err
	}
	u, err := url.Parse(o.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	if h.Proxy, err = faultproxy.New(u.Host); err != nil {
		return nil, err
	}
	u.Host = h.Proxy.Addr()
	env := map[string]string{"DATABASE_URL": u.String(), "REDIS_PREFIX": h.RedisPrefix, "MONGODB_DATABASE": h.MongoDB,
		"MQTT_URL": h.Broker.URL, "LOG_LEVEL": "warn"}
	if o.MongoURL != "" {
		env["MONGODB_URL"] = o.MongoURL
	}
	h.Stack, err = stack.Start(ctx, stack.Config{Root: o.Root, APIAddr: "127.0.0.1:0", LambdaAddr: "127.0.0.1:0",
		Instances: o.Instances, Only: []string{"ingest"}, Env: env, Logs: o.Logs, WorkDir: filepath.Join(dir, "stack")})
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	ok = true
	return h, nil
}

// Close stops everything Start started.
func (h *Harness) Close() {
	for _, p := range h.procs {
		if p.ProcessState == nil { // not waited for: may still run
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}
	if h.Stack != nil {
		_ = h.Stack.Close()
	}
	if h.Proxy != nil {
		_ = h.Proxy.Close()
	}
	if h.Broker != nil {
		h.Broker.Stop()
	}
	_ = os.RemoveAll(h.dir)
}

// RunningBridge is an in-process bridge; Stop shuts it down gracefully.
type RunningBridge struct {
	*bridge.Bridge
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// Stop ends the bridge (SIGTERM semantics) and returns Run's error.
func (b *RunningBridge) Stop() error {
	b.once.Do(func() { b.cancel(); b.err = <-b.done })
	return b.err
}

// BridgeEnv is the environment a bridge needs to reach this harness. It
// passes BRIDGE_CPUPROFILE on from this process's environment, so a bridge
// process the benchmark starts can be profiled.
func (h *Harness) BridgeEnv(extra map[string]string) map[string]string {
	env := map[string]string{"MQTT_URL": h.Broker.URL, "MQTT_CLIENT_ID": "tempwatch-bridge-e2e",
		"MQTT_USERNAME": deviceauth.DefaultBridgeUsername, "MQTT_PASSWORD": h.BridgePassword, "LAMBDA_ENDPOINT": h.Stack.InvokeURL(),
		"INGEST_FUNCTION_NAME": "ingest", "METRICS_ADDR": "127.0.0.1:0", "RETRY_BASE": "50ms", "RETRY_MAX": "1s"}
	if p := os.Getenv("BRIDGE_CPUPROFILE"); p != "" {
		env["BRIDGE_CPUPROFILE"] = p
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// StartBridge runs a bridge in this process and waits until it serves
// /metrics, which it does once it is subscribed.
func (h *Harness) StartBridge(ctx context.Context, extra map[string]string) (*RunningBridge, error) {
	env := h.BridgeEnv(extra)
	cfg, err := bridge.Load(func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	inv, err := invoker.New(ctx, invoker.Config{Function: cfg.Function, Endpoint: cfg.LambdaEndpoint, Region: cfg.Region,
		MaxConns: cfg.Workers()}, func(string) string { return "" })
	if err != nil {
		return nil, err
	}
	b := bridge.New(cfg, inv.Invoke, slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	runCtx, cancel := context.WithCancel(context.Background())
	rb := &RunningBridge{Bridge: b, cancel: cancel, done: make(chan error, 1)}
	go func() { rb.done <- b.Run(runCtx) }()
	waitCtx, c2 := context.WithTimeout(ctx, 30*time.Second)
	defer c2()
	if _, err := b.MetricsAddr(waitCtx); err != nil {
		_ = rb.Stop()
		return nil, fmt.Errorf("bridge did not start: %w", err)
	}
	return rb, nil
}

// Reading is one device reading to publish.
type Reading struct {
	Client, Device string
	Value          float64
	At             time.Time // device timestamp, millisecond precision
}

// Topic is the reading's MQTT topic.
func (r Reading) Topic() string {
	return "tempwatch/" + r.Client + "/sensors/" + r.Device + "/readings"
}

// Payload is the reading's JSON body.
func (r Reading) Payload() []byte {
	b, _ := json.Marshal(map[string]any{"value": r.Value, "ts": r.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"), "unit": "C"})
	return b
}

// Publisher publishes at QoS 1 as a fleet of devices, each over its own
// connection with its own credentials.
type Publisher struct{ conns map[string]paho.Client } // by username

// NewPublisher connects one client per device; keys maps each device's
// username ("<client-slug>/<device-id>") to its device key.
func (h *Harness) NewPublisher(keys map[string]string) (*Publisher, error) {
	p := &Publisher{conns: map[string]paho.Client{}}
	for user, key := range keys {
		c, err := h.ConnectDevice(user, key)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.conns[user] = c
	}
	return p, nil
}

// ConnectDevice connects as the device user with key.
func (h *Harness) ConnectDevice(user, key string) (paho.Client, error) {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(h.Broker.URL).SetClientID(user).SetUsername(user).SetPassword(key).
		SetAutoReconnect(true).SetOrderMatters(false).SetWriteTimeout(10 * time.Second))
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("connect device %s: %v", user, t.Error())
	}
	return c, nil
}

// Publish sends rs and waits for every PUBACK.
func (p *Publisher) Publish(rs []Reading) error {
	msgs := make([][2]string, len(rs))
	for i, r := range rs {
		msgs[i] = [2]string{r.Topic(), string(r.Payload())}
	}
	return p.PublishRaw(msgs)
}

// PublishRaw sends (topic, payload) pairs, each by the device the topic
// names, and waits for every PUBACK.
func (p *Publisher) PublishRaw(msgs [][2]string) error {
	tokens := make([]paho.Token, 0, len(msgs))
	for _, m := range msgs {
		ref, err := tempwatch.ParseTopic(m[0])
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		c, ok := p.conns[deviceauth.Username(ref)]
		if !ok {
			return fmt.Errorf("publish: no connection for device %s", ref)
		}
		tokens = append(tokens, c.Publish(m[0], 1, false, m[1]))
	}
	for _, t := range tokens {
		if !t.WaitTimeout(30 * time.Second) {
			return fmt.Errorf("publish: no PUBACK in 30s")
		}
		if err := t.Error(); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	return nil
}

// Close disconnects.
func (p *Publisher) Close() {
	for _, c := range p.conns {
		c.Disconnect(250)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
