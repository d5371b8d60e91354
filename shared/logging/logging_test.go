package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/logging"
)

func TestLoggerAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, "info").With("fn", "clients")
	ctx := logging.WithRequestID(context.Background(), "req-1")
	log.InfoContext(ctx, "hello", "n", 1)
	log.DebugContext(ctx, "hidden at info level")

	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), "one JSON line, got %q", buf.String())
	assert.Equal(t, "req-1", rec["request_id"])
	assert.Equal(t, "clients", rec["fn"])
	assert.Equal(t, "hello", rec["msg"])
}

func TestNewRequestIDIsUnique(t *testing.T) {
	a, b := logging.NewRequestID(), logging.NewRequestID()
	assert.Len(t, a, 32)
	assert.NotEqual(t, a, b)
}
