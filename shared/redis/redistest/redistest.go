// Package redistest gives each integration test a Redis client and a key
// prefix of its own on the real server; the test's keys are deleted after.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tempwatch/tempwatch/shared/redis"
)

// DefaultURL is the development machine's Redis (README, "Quick start"); TEST_REDIS_URL overrides it.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL returns the Redis URL tests use.
func URL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// MustClient returns a client and a unique key prefix ("t:<random>:"). A
// missing server fails the test: it is never a skip. Under -short (make
// test-unit, the tier that runs without services) the test is skipped before
// the server is asked.
func MustClient(tb testing.TB) (*goredis.Client, string) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("redistest: needs Redis, so not run with -short (make test-unit)")
	}
	opt, err := goredis.ParseURL(URL())
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	c := goredis.NewClient(opt)
	if err := c.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("redistest: Redis unreachable at %s (start it with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no): %v", opt.Addr, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "t:" + hex.EncodeToString(b[:]) + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		_ = c.Close()
	})
	return c, prefix
}

// MustAdapter returns the Redis adapter's client over MustClient's client
// and prefix.
func MustAdapter(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb, prefix := MustClient(tb)
	return redis.New(rdb, redis.Options{Prefix: prefix})
}

// DeadURL returns the URL of a local port nothing listens on: a Redis that
// is down.
func DeadURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	return "redis://" + addr + "/0"
}
