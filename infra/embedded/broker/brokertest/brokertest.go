// Package brokertest runs the embedded broker with device authentication as
// a process of its own (cmd/mqttbroker), for tests and benchmarks that kill
// it or account for its CPU.
package brokertest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Broker is a running mqttbroker process.
type Broker struct {
	URL  string
	Addr string
	cmd  *exec.Cmd
}

// Start builds cmd/mqttbroker into dir and runs it on a free port with env
// (DATABASE_URL, REDIS_URL, REDIS_PREFIX, MQTT_BRIDGE_PASSWORD: see
// broker.NewAuthority) on top of this process's environment.
func Start(dir string, env map[string]string) (*Broker, error) {
	bin := filepath.Join(dir, "mqttbroker")
	build := exec.Command("go", "build", "-o", bin, "github.com/tempwatch/tempwatch/infra/cmd/mqttbroker")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build mqttbroker: %w\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mqttbroker: %w", err)
	}
	b := &Broker{cmd: cmd}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	select {
	case u, ok := <-line:
		if !ok || !strings.HasPrefix(u, "tcp://") {
			b.Stop()
			return nil, fmt.Errorf("mqttbroker did not start (said %q)", u)
		}
		b.URL, b.Addr = u, strings.TrimPrefix(u, "tcp://")
		return b, nil
	case <-time.After(30 * time.Second):
		b.Stop()
		return nil, fmt.Errorf("mqttbroker did not start within 30s")
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
func (b *Broker) String() string { return fmt.Sprintf("mqttbroker %s (pid %d)", b.Addr, b.Pid()) }
