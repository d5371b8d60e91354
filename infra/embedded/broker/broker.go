// Package broker runs an MQTT broker (mochi-mqtt) inside the current process,
// for development and tests where no broker is configured. It asks
// shared/deviceauth — the rule EMQX and AWS IoT Core ask over their own
// interfaces — at every CONNECT, PUBLISH and SUBSCRIBE.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/telemetry"
)

// MaxPacketSize is the largest MQTT packet the broker takes: the payload
// limit plus room for the fixed header, topic and packet id, as in the
// shipped EMQX and Mosquitto configurations.
const MaxPacketSize = telemetry.MaxPayloadBytes + 1<<10

// connectTimeout bounds the key lookup of one CONNECT.
const connectTimeout = 5 * time.Second

// Start runs an MQTT broker on addr (host:port; port 0 picks a free one)
// that lets in and authorizes exactly what auth allows. It returns the
// broker's URL (tcp://host:port) once it accepts connections. stop closes
// the broker and its client connections; it is safe to call more than once.
// The broker logs refusals and its own warnings to stderr.
func Start(addr string, auth *deviceauth.Authority) (url string, stop func(), err error) {
	if auth == nil {
		return "", nil, errors.New("broker: an authority is required (no broker of ours lets everyone in)")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// mochi acks a QoS 1 publish before it routes it and drops the message
	// for a subscriber that already holds MaximumInflight unacknowledged
	// (default 8192): a burst the bridge has not yet stored, or what arrives
	// while its persistent session is away, beyond that is lost. The most
	// packet ids allow moves that point as far out as MQTT can.
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumInflight = math.MaxUint16
	// mochi accepts packets of any size by default; a larger one than a
	// full payload with its headers ends the connection, unacknowledged.
	caps.MaximumPacketSize = MaxPacketSize
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: logger, Capabilities: caps})
	if err := srv.AddHook(&authHook{auth: auth, log: logger}, nil); err != nil {
		return "", nil, fmt.Errorf("broker: add auth hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	// AddListener binds the socket, so the address is known and connections
	// queue from here on.
	if err := srv.AddListener(tcp); err != nil {
		return "", nil, fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return "", nil, fmt.Errorf("broker: serve: %w", err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { _ = srv.Close() }) }
	return "tcp://" + tcp.Address(), stop, nil
}

// authHook asks the authority. mochi runs OnConnectAuthenticate before a
// client can take over the session of one with the same client id, so a
// refused client never disturbs the bridge's session.
type authHook struct {
	mqtt.HookBase
	auth *deviceauth.Authority
	log  *slog.Logger
}

func (h *authHook) ID() string { return "tempwatch-deviceauth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	_, err := h.auth.Connect(ctx, cl.ID, string(pk.Connect.Username), string(pk.Connect.Password))
	if err != nil {
		h.log.Warn("mqtt connect refused", "client_id", deviceauth.LogSafe(cl.ID), "username", deviceauth.LogSafe(string(pk.Connect.Username)),
			"remote", cl.Net.Remote, "reason", err)
		return false
	}
	return true
}

// OnACLCheck is asked for every PUBLISH a client sends (write), every
// filter it subscribes to, and every message about to be delivered to it.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	action := deviceauth.Subscribe
	if write {
		action = deviceauth.Publish
	}
	if h.auth.Allowed(string(cl.Properties.Username), cl.ID, action, topic) {
		return true
	}
	h.log.Warn("mqtt "+string(action)+" refused", "client_id", deviceauth.LogSafe(cl.ID), "username", deviceauth.LogSafe(string(cl.Properties.Username)),
		"topic", deviceauth.LogSafe(topic))
	return false
}
