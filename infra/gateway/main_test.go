package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfig(t *testing.T) {
	env := map[string]string{
		"GATEWAY_FUNCTION_URL_TEMPLATE": "http://fn-{name}:9000",
		"FUNCTION_URL_RAW_READINGS":     "http://127.0.0.1:7000",
		"GATEWAY_TIMEOUT":               "5s",
		"GATEWAY_QUEUE":                 "7",
	}
	cfg, err := loadConfig(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, ":3000", cfg.Addr)
	assert.Equal(t, "v1", cfg.Stage)
	assert.Equal(t, 5*time.Second, cfg.Timeout)
	assert.Equal(t, 1, cfg.Concurrency, "the emulator runs one invocation at a time")
	assert.Equal(t, 7, cfg.Queue)
	assert.Equal(t, "http://fn-clients:9000", cfg.functionURL("clients"))
	assert.Equal(t, "http://127.0.0.1:7000", cfg.functionURL("raw-readings"))

	_, err = loadConfig(func(k string) string { return map[string]string{"GATEWAY_TIMEOUT": "soon"}[k] })
	assert.ErrorContains(t, err, "GATEWAY_TIMEOUT")
	for name, v := range map[string]string{"GATEWAY_FUNCTION_CONCURRENCY": "0", "GATEWAY_QUEUE": "many"} {
		_, err = loadConfig(func(k string) string { return map[string]string{name: v}[k] })
		assert.ErrorContains(t, err, name)
	}
}

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != healthPath {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	assert.Equal(t, 0, healthcheck(func(k string) string { return map[string]string{"GATEWAY_ADDR": addr}[k] }))

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	assert.Equal(t, 1, healthcheck(func(k string) string {
		return map[string]string{"GATEWAY_ADDR": strings.TrimPrefix(down.URL, "http://")}[k]
	}))
}
