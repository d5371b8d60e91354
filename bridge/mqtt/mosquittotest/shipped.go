package mosquittotest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Shipped is a private Mosquitto running a shipped configuration file.
type Shipped struct {
	*Broker
	conf string
}

// testOnly are the settings StartShipped rewrites in the shipped file to
// run it privately: where it listens and where its files are. Everything
// else (queue, window, packet size, persistence, authentication switches)
// is used exactly as shipped.
var testOnly = []string{"listener", "persistence_location", "password_file", "acl_file"}

// MustStartShipped starts Mosquitto with the configuration file conf, on a
// free port of 127.0.0.1, with its persistence, password file (users: name
// → password) and ACL file (a copy of acl) in a fresh directory. It stops
// when tb ends.
func MustStartShipped(tb testing.TB, conf, acl string, users map[string]string) *Shipped {
	tb.Helper()
	skipShort(tb)
	// mosquitto run as root drops to the mosquitto user, which must reach
	// its files: tb.TempDir is private to this user.
	dir, err := os.MkdirTemp("", "mosquitto-shipped-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o777); err != nil {
		tb.Fatal(err)
	}
	for _, d := range []string{dir, data} {
		if err := os.Chmod(d, 0o777); err != nil {
			tb.Fatal(err)
		}
	}
	passwd := filepath.Join(dir, "passwd")
	for user, pass := range users {
		args := []string{"-b", passwd, user, pass}
		if _, err := os.Stat(passwd); err != nil {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
			tb.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
	}
	aclText, err := os.ReadFile(acl)
	if err != nil {
		tb.Fatal(err)
	}
	aclFile := filepath.Join(dir, "acl")
	if err := os.WriteFile(aclFile, aclText, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(passwd, 0o644); err != nil {
		tb.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	text, err := rewrite(conf, map[string]string{
		"listener": port + " 127.0.0.1", "persistence_location": data + "/",
		"password_file": passwd, "acl_file": aclFile,
	})
	if err != nil {
		tb.Fatal(err)
	}
	s := &Shipped{conf: filepath.Join(dir, "mosquitto.conf")}
	text += "log_dest stderr\nlog_type error\n"
	if err := os.WriteFile(s.conf, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := s.start(addr); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Stop() }) // the broker of the last Restart
	return s
}

// rewrite returns the file with each testOnly setting's value replaced;
// it fails if the file lacks one of them, so the test cannot quietly run
// something other than the shipped listener and auth setup.
func rewrite(conf string, values map[string]string) (string, error) {
	f, err := os.Open(conf)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var b strings.Builder
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		key, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if v, ok := values[key]; ok {
			if seen[key] {
				return "", fmt.Errorf("%s: %s is set twice", conf, key)
			}
			seen[key] = true
			line = key + " " + v
		}
		b.WriteString(line + "\n")
	}
	for _, k := range testOnly {
		if !seen[k] {
			return "", fmt.Errorf("%s: no %s setting to run it privately", conf, k)
		}
	}
	return b.String(), sc.Err()
}

func (s *Shipped) start(addr string) error {
	cmd := exec.Command("mosquitto", "-c", s.conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mosquitto: %w", err)
	}
	s.Broker = &Broker{URL: "tcp://" + addr, Addr: addr, cmd: cmd}
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("mosquitto on %s did not start: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart stops the broker gracefully (SIGTERM: Mosquitto saves its
// database) and starts it again on the same port with the same files.
func (s *Shipped) Restart(tb testing.TB) {
	tb.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
	if err := s.start(s.Addr); err != nil {
		tb.Fatal(err)
	}
}
