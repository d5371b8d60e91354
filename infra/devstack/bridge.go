package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
)

// startBridge builds the MQTT bridge and runs it against the stack's broker
// and Invoke API, so `make run` carries readings from MQTT to PostgreSQL.
// The returned stop sends SIGTERM (the bridge flushes its open batch) and
// waits for it to exit.
func startBridge(ctx context.Context, root, metricsAddr string, s *stack.Stack) (stop func(), err error) {
	dir, err := os.MkdirTemp("", "tempwatch-bridge-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "bridge")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./bridge")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build bridge: %w\n%s", err, out)
	}
	cred := s.BridgeCredential()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"MQTT_URL="+s.MQTTURL(),
		"MQTT_CLIENT_ID="+cred.ClientIDPrefix+"-devstack",
		"MQTT_USERNAME="+cred.Username, "MQTT_PASSWORD="+cred.Password,
		"LAMBDA_ENDPOINT="+s.InvokeURL(),
		"INGEST_FUNCTION_NAME=ingest",
		"METRICS_ADDR="+metricsAddr,
		// The Invoke API of devstack checks no signature, but the AWS SDK
		// insists on credentials.
		"AWS_ACCESS_KEY_ID=devstack", "AWS_SECRET_ACCESS_KEY=devstack",
	)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bridge: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = os.RemoveAll(dir)
	}, nil
}
