// Package ferret runs FerretDB, a MongoDB-wire-compatible server, inside the
// current process with its SQLite backend, for development and tests on
// machines without a MongoDB server.
package ferret

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Options tunes Start beyond its required arguments.
type Options struct {
	// Logger receives FerretDB's logs; nil keeps only errors.
	Logger *slog.Logger
}

// Start runs FerretDB listening on addr (host:port; port 0 picks a free one)
// and storing its SQLite files in dir, which is created if missing.
// It returns once the server accepts connections. stop shuts it down and
// waits for it; it is safe to call more than once.
func Start(ctx context.Context, dir, addr string) (uri string, stop func(), err error) {
	return StartWithOptions(ctx, dir, addr, Options{})
}

// StartWithOptions is Start with Options.
func StartWithOptions(ctx context.Context, dir, addr string, opts Options) (uri string, stop func(), err error) {
	srv, err := Serve(ctx, dir, addr, opts)
	if err != nil {
		return "", nil, err
	}
	return srv.URI(), srv.Close, nil
}

// Server is a running FerretDB.
type Server struct {
	uri   string
	done  chan struct{}
	close func()
}

// URI is the server's mongodb:// URI.
func (s *Server) URI() string { return s.uri }

// Done is closed when the server has stopped, asked (Close) or not.
func (s *Server) Done() <-chan struct{} { return s.done }

// Close shuts the server down and waits for it; it is safe to call more
// than once.
func (s *Server) Close() { s.close() }

// Serve is StartWithOptions returning the Server, so a caller can tell
// when it stops.
func Serve(ctx context.Context, dir, addr string, opts Options) (*Server, error) {
	uri, stop, done, err := start(ctx, dir, addr, opts)
	if err != nil {
		return nil, err
	}
	return &Server{uri: uri, done: done, close: stop}, nil
}

func start(ctx context.Context, dir, addr string, opts Options) (uri string, stop func(), done chan struct{}, err error) {
	if dir == "" {
		return "", nil, nil, errors.New("ferret: data directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, nil, fmt.Errorf("ferret: data directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", nil, nil, fmt.Errorf("ferret: create data directory: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	// The SQLite backend wants a directory URI ending in a slash. FerretDB
	// adds busy_timeout, journal_mode(wal) and auto_vacuum(none) itself.
	// synchronous(normal) is SQLite's advice for WAL: a commit no longer
	// waits for an fsync (FerretDB commits every 100 documents of an
	// insert); the database stays consistent, and only an OS crash or power
	// loss may drop the last commits, which is fine for a development
	// server.
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/?_pragma=synchronous(normal)",
		Logger:    logger,
	})
	if err != nil {
		return "", nil, nil, fmt.Errorf("ferret: %w", err)
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done = make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(runCtx)
	}()
	stop = func() {
		cancel()
		<-done
	}

	// MongoDBURI blocks until the listener is bound.
	uriCh := make(chan string, 1)
	go func() { uriCh <- f.MongoDBURI() }()
	select {
	case uri = <-uriCh:
	case <-done:
		return "", nil, nil, fmt.Errorf("ferret: server on %s stopped during start-up (address in use?)", addr)
	case <-ctx.Done():
		stop()
		return "", nil, nil, ctx.Err()
	case <-time.After(30 * time.Second):
		stop()
		return "", nil, nil, fmt.Errorf("ferret: server on %s did not start within 30s", addr)
	}

	host := hostOf(uri)
	if err := waitDial(ctx, host, 30*time.Second); err != nil {
		stop()
		return "", nil, nil, fmt.Errorf("ferret: %w", err)
	}
	return uri, stop, done, nil
}

func hostOf(uri string) string {
	// uri is mongodb://host:port/
	const p = "mongodb://"
	h := uri[len(p):]
	for i, c := range h {
		if c == '/' {
			return h[:i]
		}
	}
	return h
}

func waitDial(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no connection to %s within %s: %w", addr, limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
