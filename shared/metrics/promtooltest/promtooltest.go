// Package promtooltest runs Prometheus' promtool over metrics in tests.
package promtooltest

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// MustCheckMetrics runs `promtool check metrics` over exposition (the text
// a /metrics endpoint serves) and fails tb with promtool's findings: names
// and help that break Prometheus' conventions, counters without _total,
// units that are not base units. promtool comes from Debian's prometheus
// package (infra/scripts/services.sh need_prometheus); without it the test
// fails, except under -short (the fast tier), where it is skipped.
func MustCheckMetrics(tb testing.TB, exposition []byte) {
	tb.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if testing.Short() {
			tb.Skip("promtooltest: promtool is not run with -short")
		}
		tb.Fatalf("promtool not found in PATH (install Debian's prometheus package: infra/scripts/services.sh need_prometheus): %v", err)
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		tb.Fatalf("promtool check metrics: %v\n%s\nover:\n%s", err, out, exposition)
	}
}
