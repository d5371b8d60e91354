package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFunctionEnvPassesWhatFunctionsRead(t *testing.T) {
	got := functionEnv([]string{"DATABASE_URL=postgres://x", "REDIS_PREFIX=dev1:", "MQTT_BRIDGE_PASSWORD=p", "JWT_SIGNING_KEYS=k",
		"HOME=/root", "AWS_SECRET_ACCESS_KEY=s"})
	assert.Equal(t, map[string]string{"DATABASE_URL": "postgres://x", "REDIS_PREFIX": "dev1:", "MQTT_BRIDGE_PASSWORD": "p", "JWT_SIGNING_KEYS": "k"}, got)
}

func TestFerretDataOutlivesARunUnlessEphemeral(t *testing.T) {
	assert.Equal(t, filepath.Join("/repo", ".devstack", "ferretdb"), ferretDir("/repo", false))
	assert.Empty(t, ferretDir("/repo", true), "ephemeral: the stack's temporary folder")
}
