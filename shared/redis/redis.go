// Package redis is the Redis adapter: the client every function shares for
// caches, rate limits and revoked tokens.
package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Open returns a client for url (redis://host:port/db). It does not fail when
// Redis is unreachable: Redis is a cache, and callers degrade to PostgreSQL.
// Ping reports reachability for those that want to know.
func Open(url string) (*goredis.Client, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("redis: REDIS_URL is not a valid redis:// URL")
	}
	opt.DialTimeout = 500 * time.Millisecond
	opt.ReadTimeout = 500 * time.Millisecond
	opt.WriteTimeout = 500 * time.Millisecond
	opt.MaxRetries = 1
	return goredis.NewClient(opt), nil
}

// Ping checks the server answers, naming the address when it does not.
func Ping(ctx context.Context, c *goredis.Client) error {
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: cannot reach %s (is Redis running? start it with "+
			"`redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no`): %w",
			c.Options().Addr, err)
	}
	return nil
}
