// Command simulator publishes realistic temperature readings of several
// client companies' sensors to the MQTT broker (QoS 1), each sensor over a
// connection of its own with its device credentials. It creates those
// clients and sensors through the REST API first, or gives existing
// sensors new keys. Every setting has an environment variable (compose
// sets them; sim.Config lists them); a flag wins over it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tempwatch/tempwatch/infra/simulator/sim"
)

func main() {
	cfg, err := sim.LoadConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "simulator:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, cfg, log); err != nil {
		log.Error("simulator failed", "error", err)
		os.Exit(1)
	}
}

// run sets the fleet up through the API, connects every sensor with its
// key and publishes until cfg.Duration ends; it returns how many messages
// it published.
func run(ctx context.Context, cfg sim.Config, log *slog.Logger) (int, error) {
	fleet := sim.Fleet(cfg.Clients, cfg.Sensors, cfg.Seed)
	api := &sim.API{BaseURL: cfg.APIURL, Token: cfg.Token}
	if api.Token == "" {
		if err := api.Login(ctx, cfg.Email, cfg.Password); err != nil {
			return 0, fmt.Errorf("setup: %w", err)
		}
	}
	if err := api.Setup(ctx, fleet); err != nil {
		return 0, fmt.Errorf("setup: %w", err)
	}
	log.Info("clients and sensors ready", "clients", cfg.Clients, "sensors", len(fleet))

	devices, err := sim.ConnectDevices(cfg.Broker, fleet)
	if err != nil {
		return 0, fmt.Errorf("connect devices: %w", err)
	}
	defer devices.Close()
	gen := sim.NewGenerator(fleet, sim.Mix{Malformed: cfg.Malformed, Duplicate: cfg.Duplicates}, cfg.Seed)
	start := time.Now()
	n, err := sim.Run(ctx, gen, cfg.Rate, cfg.Duration, devices.Publish)
	log.Info("done", "published", n, "seconds", time.Since(start).Seconds())
	if err != nil {
		return n, fmt.Errorf("publish: %w", err)
	}
	return n, nil
}
