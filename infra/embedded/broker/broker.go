// Package broker runs an MQTT broker (mochi-mqtt) inside the current process,
// for development and tests where no broker is configured.
package broker

import (
	"fmt"
	"log/slog"
	"os"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Start runs an MQTT broker that allows every client and topic, listening on
// addr (host:port; port 0 picks a free one). It returns the broker's URL
// (tcp://host:port) once it accepts connections. stop closes the broker and
// its client connections; it is safe to call more than once. The broker logs
// only warnings and errors, to stderr.
func Start(addr string) (url string, stop func(), err error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: logger})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
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
