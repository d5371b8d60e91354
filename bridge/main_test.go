package main

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets a test run this binary's main, as the container runs
// `bridge -healthcheck`.
func TestMain(m *testing.M) {
	if os.Getenv("BRIDGE_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestHealthcheckFlag(t *testing.T) {
	serve := func(code int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(code)
		}))
		t.Cleanup(srv.Close)
		_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
		require.NoError(t, err)
		return ":" + port
	}
	tests := []struct {
		name     string
		addr     string
		wantExit int
	}{
		{"subscribed", serve(http.StatusOK), 0},
		{"not connected", serve(http.StatusServiceUnavailable), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-healthcheck")
			cmd.Env = append(os.Environ(), "BRIDGE_TEST_RUN_MAIN=1", "METRICS_ADDR="+tt.addr)
			out, err := cmd.CombinedOutput()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantExit, code, "bridge -healthcheck with METRICS_ADDR=%s: %s", tt.addr, out)
		})
	}
}
