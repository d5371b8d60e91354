// Package mosquittotest starts private Mosquitto brokers for tests, so fault
// tests never touch the shared one on port 1883.
package mosquittotest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Broker is a running mosquitto process.
type Broker struct {
	URL  string
	Addr string
	cmd  *exec.Cmd
}

// MustStart starts a broker (see Start) that stops when tb ends. Under
// -short (make test-unit, the tier that runs without services) the test is
// skipped instead; without -short a missing mosquitto fails it.
func MustStart(tb testing.TB, extra ...string) *Broker {
	tb.Helper()
	skipShort(tb)
	b, err := Start(tb.TempDir(), extra...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Stop)
	return b
}

// skipShort skips tb under -short: every broker this package starts is a
// Mosquitto process, a service the fast tier runs without.
func skipShort(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("mosquittotest: needs Mosquitto, so not run with -short (make test-unit)")
	}
}

// Start runs `mosquitto -c <dir>/mosquitto.conf` on a free port with
// anonymous access and unlimited in-flight and queued messages (the bridge
// bounds what it holds itself), plus any extra config lines.
func Start(dir string, extra ...string) (*Broker, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		return nil, fmt.Errorf("mosquitto not installed: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	lines := append([]string{
		"listener " + port + " 127.0.0.1",
		"allow_anonymous true",
		"persistence false",
		"max_inflight_messages 0",
		"max_queued_messages 0",
		"log_dest stderr",
		"log_type error",
	}, extra...)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mosquitto: %w", err)
	}
	b := &Broker{URL: "tcp://" + addr, Addr: addr, cmd: cmd}
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return b, nil
		}
		if time.Now().After(deadline) {
			b.Stop()
			return nil, fmt.Errorf("mosquitto on %s did not start: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid is the broker's process id (for CPU accounting).
func (b *Broker) Pid() int { return b.cmd.Process.Pid }

// Stop kills the broker and waits for it to exit.
func (b *Broker) Stop() {
	if b.cmd.ProcessState != nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
}

// String names the broker in test output.
func (b *Broker) String() string { return fmt.Sprintf("mosquitto %s (pid %d)", b.Addr, b.Pid()) }
