package bridge_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/bridge"
)

func TestHealthcheck(t *testing.T) {
	status := func(code int) string {
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
		return ":" + port // as METRICS_ADDR is written
	}
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		return addr
	}
	tests := []struct {
		name    string
		addr    string
		wantErr string
	}{
		{"subscribed", status(http.StatusOK), ""},
		{"not connected", status(http.StatusServiceUnavailable), "status 503"},
		{"nothing listening", closed(), "connection refused"},
		{"bad address", "8081", "METRICS_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := bridge.Healthcheck(context.Background(), tt.addr)
			if tt.wantErr == "" {
				assert.NoError(t, err, "Healthcheck(%s)", tt.addr)
				return
			}
			require.Error(t, err, "Healthcheck(%s)", tt.addr)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}
