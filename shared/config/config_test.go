package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/config"
)

func TestReaderCollectsEveryProblem(t *testing.T) {
	r := config.NewReader(config.MapEnv(map[string]string{
		"PORT":    "70000",
		"TIMEOUT": "soon",
		"DB":      "postgres://u:secret@h/db",
		"BAD_URL": "http://u:secret@h/x",
		"MODE":    "loud",
		"FLAG":    "maybe",
	}))
	assert.Equal(t, "", r.Required("MISSING"))
	assert.Equal(t, 8080, r.Int("PORT", 8080, 1, 65535))
	assert.Equal(t, time.Second, r.Duration("TIMEOUT", time.Second, 0, time.Minute))
	assert.Equal(t, "postgres://u:secret@h/db", r.URL("DB", "", "postgres", "postgresql"))
	assert.Equal(t, "", r.URL("BAD_URL", "", "redis"))
	assert.Equal(t, "quiet", r.OneOf("MODE", "quiet", "quiet", "debug"))
	assert.True(t, r.Bool("FLAG", true))

	err := r.Err()
	require.Error(t, err)
	msg := err.Error()
	for _, name := range []string{"MISSING", "PORT", "TIMEOUT", "BAD_URL", "MODE", "FLAG"} {
		assert.Contains(t, msg, name)
	}
	assert.NotContains(t, msg, "secret", "a URL's password must never reach an error message")
}

func TestReaderDefaults(t *testing.T) {
	r := config.NewReader(config.MapEnv(nil))
	assert.Equal(t, "d", r.String("X", "d"))
	assert.Equal(t, 3, r.Int("X", 3, 0, 10))
	assert.Equal(t, 2*time.Second, r.Duration("X", 2*time.Second, 0, time.Hour))
	assert.Equal(t, "redis://localhost:6379", r.URL("X", "redis://localhost:6379", "redis"))
	assert.NoError(t, r.Err())
}

func TestReaderSecret(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"long enough", "0123456789abcdef0123456789abcdef", true},
		{"too short", "hunter2-is-short", false},
		{"unset", "", false},
		{"only spaces", "      ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := config.NewReader(config.MapEnv(map[string]string{"S": tt.value}))
			got := r.Secret("S", 32)
			if tt.ok {
				require.NoError(t, r.Err())
				assert.Equal(t, tt.value, got)
				return
			}
			require.Error(t, r.Err())
			assert.Contains(t, r.Err().Error(), "S ")
			if tt.value != "" {
				assert.NotContains(t, r.Err().Error(), tt.value, "Secret must never echo the value")
			}
		})
	}
}
