package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// bridgeName is the bridge's name in the logs and among the supervised.
const bridgeName = "bridge"

// startBridge builds the MQTT bridge and runs it, supervised, against the
// stack's broker and Invoke API, so readings go from MQTT to PostgreSQL as
// in a deployment. It runs only when the stack serves the ingest function.
func (s *Stack) startBridge(ctx context.Context) error {
	if !slices.ContainsFunc(s.fns, func(f sam.Function) bool { return f.Name == "ingest" }) {
		return nil
	}
	bin := filepath.Join(s.cfg.WorkDir, "bridge", "bridge")
	if err := goBuild(ctx, s.cfg.Root, bin, "the MQTT bridge", "./bridge"); err != nil {
		return err
	}
	// A port of 0 is picked here, once, so that the bridge answers at the
	// same address after a restart (BridgeMetricsURL).
	addr, err := fixedPort(s.cfg.BridgeMetricsAddr)
	if err != nil {
		return fmt.Errorf("bridge metrics address: %w", err)
	}
	s.bridgeMetricsURL = "http://" + addr
	cred := s.BridgeCredential()
	env := append(os.Environ(),
		"MQTT_URL="+s.MQTTURL(),
		"MQTT_CLIENT_ID="+cred.ClientIDPrefix+"-devstack",
		"MQTT_USERNAME="+cred.Username, "MQTT_PASSWORD="+cred.Password,
		"LAMBDA_ENDPOINT="+s.InvokeURL(),
		"INGEST_FUNCTION_NAME=ingest",
		"METRICS_ADDR="+addr,
		// The Invoke API of devstack checks no signature, but the AWS SDK
		// insists on credentials.
		"AWS_ACCESS_KEY_ID=devstack", "AWS_SECRET_ACCESS_KEY=devstack",
	)
	out := &prefixWriter{w: s.cfg.Logs, mu: &logMu, prefix: "[bridge] "}
	sup, err := s.supervise(bridgeName, func() (*serverRun, error) { return runBridge(bin, env, out) })
	if err != nil {
		return fmt.Errorf("start bridge: %w", err)
	}
	s.bridge = sup
	return nil
}

// fixedPort is addr with a free port in place of port 0.
func fixedPort(addr string) (string, error) {
	if _, port, err := net.SplitHostPort(addr); err != nil || port != "0" {
		return addr, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// runBridge starts one bridge process. Its stop sends SIGTERM (the bridge
// flushes its open batch) and waits for it to exit.
func runBridge(bin string, env []string, out io.Writer) (*serverRun, error) {
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	died := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		if err == nil {
			err = errors.New("exited with status 0")
		}
		died <- err
		close(exited)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	return &serverRun{died: died, stop: stop, kill: func() { _ = cmd.Process.Kill() }}, nil
}
