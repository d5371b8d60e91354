package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	file := filepath.Join(t.TempDir(), "template.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
Resources:
  B:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/sensors/
      Events:
        Get: {Type: Api, Properties: {Path: "/sensors/{id}", Method: get}}
  A:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/auth/
      Timeout: 10
      MemorySize: 512
      Environment:
        Variables:
          JWT_SIGNING_KEYS: !Ref Keys
          JWT_ACCESS_TTL: 15m
      Events:
        Login: {Type: Api, Properties: {Path: /auth/login, Method: post}}
`), 0o644))

	tests := []struct {
		name string
		what string
		want string
	}{
		{"routes", "routes", "POST /auth/login auth\nGET /sensors/{id} sensors\n"},
		{"functions", "functions", "auth\nsensors\n"},
		{"env", "env", "auth JWT_SIGNING_KEYS\nauth JWT_ACCESS_TTL 15m\n"},
		{"config", "config", "auth 10 512\nsensors 3 128\n"}, // SAM's defaults for B
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			require.NoError(t, run(&out, file, tt.what))
			assert.Equal(t, tt.want, out.String())
		})
	}
	assert.Error(t, run(&strings.Builder{}, filepath.Join(t.TempDir(), "missing.yaml"), "routes"))
}
