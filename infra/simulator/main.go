// Command simulator publishes realistic temperature readings of several
// client companies' sensors to the MQTT broker (QoS 1); with -setup it first
// creates those clients and sensors through the REST API.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tempwatch/tempwatch/bridge/mqtt"
	"github.com/tempwatch/tempwatch/infra/simulator/sim"
)

func main() {
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	var (
		broker    = flag.String("broker", env("MQTT_URL", "tcp://127.0.0.1:1883"), "MQTT broker URL (env MQTT_URL)")
		rate      = flag.Float64("rate", 50, "messages per second, all sensors together")
		duration  = flag.Duration("duration", time.Minute, "how long to publish (0: until interrupted)")
		clients   = flag.Int("clients", 2, "client companies")
		sensors   = flag.Int("sensors", 5, "sensors per client")
		malformed = flag.Float64("malformed", 0.01, "share of malformed messages [0,1]")
		dup       = flag.Float64("duplicates", 0.01, "share of messages sent twice [0,1]")
		seed      = flag.Uint64("seed", 1, "random seed (sensor offsets and noise)")
		setup     = flag.Bool("setup", false, "create the clients and sensors through the API first")
		apiURL    = flag.String("api", env("API_URL", "http://127.0.0.1:3000"), "REST API base URL for -setup (env API_URL)")
		token     = flag.String("token", os.Getenv("ADMIN_TOKEN"), "admin bearer token for -setup (env ADMIN_TOKEN); else log in")
		email     = flag.String("admin-email", env("ADMIN_EMAIL", "admin@tempwatch.local"), "admin login for -setup (env ADMIN_EMAIL)")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := validate(*rate, *clients, *sensors, *malformed, *dup); err != nil {
		fmt.Fprintln(os.Stderr, "simulator:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fleet := sim.Fleet(*clients, *sensors, *seed)

	if *setup {
		api := &sim.API{BaseURL: *apiURL, Token: *token}
		if api.Token == "" {
			// The password comes from the environment only, never a flag (ps shows flags).
			if err := api.Login(ctx, *email, os.Getenv("ADMIN_PASSWORD")); err != nil {
				log.Error("setup failed", "error", err)
				os.Exit(1)
			}
		}
		if err := api.Setup(ctx, fleet); err != nil {
			log.Error("setup failed", "error", err)
			os.Exit(1)
		}
		log.Info("clients and sensors ready", "clients", *clients, "sensors", len(fleet))
	}

	// With -setup every sensor connects as itself, with its device key; a
	// broker that takes anonymous clients also gets one shared connection.
	devices, err := sim.ConnectDevices(*broker, fmt.Sprintf("tempwatch-simulator-%d", os.Getpid()), fleet, mqtt.BufferedConnections)
	if err != nil {
		log.Error("mqtt connect failed", "broker", *broker, "error", err)
		os.Exit(1)
	}
	defer devices.Close()
	gen := sim.NewGenerator(fleet, sim.Mix{Malformed: *malformed, Duplicate: *dup}, *seed)
	start := time.Now()
	n, err := sim.Run(ctx, gen, *rate, *duration, devices.Publish)
	log.Info("done", "published", n, "seconds", time.Since(start).Seconds())
	if err != nil {
		log.Error("publish failed", "error", err)
		os.Exit(1)
	}
}

func validate(rate float64, clients, sensors int, malformed, dup float64) error {
	switch {
	case rate <= 0 || rate > 1e6:
		return fmt.Errorf("-rate %g must be in (0, 1e6]", rate)
	case clients < 1 || clients > 1000:
		return fmt.Errorf("-clients %d must be in [1, 1000]", clients)
	case sensors < 1 || sensors > 10000:
		return fmt.Errorf("-sensors %d must be in [1, 10000]", sensors)
	case malformed < 0 || malformed > 1:
		return fmt.Errorf("-malformed %g must be in [0, 1]", malformed)
	case dup < 0 || dup > 1:
		return fmt.Errorf("-duplicates %g must be in [0, 1]", dup)
	}
	return nil
}
