// Command bridge subscribes to the devices' MQTT readings and hands them in
// batches to the ingest function through the Lambda Invoke API, acknowledging
// each message only once it is stored or rejected for good.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tempwatch/tempwatch/bridge/bridge"
	"github.com/tempwatch/tempwatch/bridge/invoker"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/logging"
)

func main() {
	cfg, err := bridge.Load(os.Getenv)
	if err != nil {
		config.Exit("bridge", err)
	}
	log := logging.New(os.Stderr, cfg.LogLevel).With("program", "bridge")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	inv, err := invoker.New(ctx, invoker.Config{Function: cfg.Function, Endpoint: cfg.LambdaEndpoint,
		Region: cfg.Region, MaxConns: cfg.Workers()}, os.Getenv)
	if err != nil {
		config.Exit("bridge", err)
	}
	if err := bridge.New(cfg, inv.Invoke, log).Run(ctx); err != nil {
		log.Error("bridge failed", "error", err)
		os.Exit(1)
	}
}
