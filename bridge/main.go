// Command bridge subscribes to the devices' MQTT readings and hands them in
// batches to the ingest function through the Lambda Invoke API, acknowledging
// each message only once it is stored or rejected for good.
//
// `bridge -healthcheck` asks a running bridge's /healthz (METRICS_ADDR) and
// exits 0 if it is subscribed, 1 otherwise: the container healthcheck of an
// image without a shell.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tempwatch/tempwatch/bridge/bridge"
	"github.com/tempwatch/tempwatch/bridge/invoker"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/logging"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-healthcheck" {
		if err := bridge.Healthcheck(context.Background(), config.NewReader(os.Getenv).String("METRICS_ADDR", ":8081")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
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
