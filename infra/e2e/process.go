package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// BuildBridge builds the bridge binary from the repository at root into dir.
func BuildBridge(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "bridge")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bridge")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build bridge: %w\n%s", err, out)
	}
	return bin, nil
}

// StartBridgeProcess runs the bridge binary against this harness and waits
// until /healthz answers 200 (it does once subscribed).
func (h *Harness) StartBridgeProcess(ctx context.Context, bin string, extra map[string]string) (*exec.Cmd, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	env := h.BridgeEnv(extra)
	env["METRICS_ADDR"] = addr
	cmd := exec.Command(bin)
	cmd.Stdout, cmd.Stderr = h.logs, h.logs
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h.procs = append(h.procs, cmd)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("bridge process never became healthy")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
