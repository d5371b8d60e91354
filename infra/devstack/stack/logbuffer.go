package stack

import (
	"bytes"
	"sync"
)

// LogBuffer collects what the stack's processes write (Config.Logs), safe
// for the concurrent writes of many instances, so a test can show the
// functions' logs when it fails.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
