package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"

	goredis "github.com/redis/go-redis/v9"
)

var _ tempwatch.RevocationList = (*RedisRevocations)(nil)

// RedisRevocations keeps revoked token and session ids in Redis under
// prefix+"revoked:"+id, each expiring when the tokens it covers would.
type RedisRevocations struct {
	rdb    *goredis.Client
	prefix string
}

// NewRedisRevocations returns the revocation list over rdb; prefix is the
// product's key prefix (default "tw:").
func NewRedisRevocations(rdb *goredis.Client, prefix string) *RedisRevocations {
	return &RedisRevocations{rdb: rdb, prefix: prefix}
}

func (l *RedisRevocations) key(id string) string { return l.prefix + "revoked:" + id }

// Revoke marks id revoked for ttl (at least one second).
func (l *RedisRevocations) Revoke(ctx context.Context, id string, ttl time.Duration) error {
	if ttl < time.Second {
		ttl = time.Second
	}
	if err := l.rdb.Set(ctx, l.key(id), 1, ttl).Err(); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// AnyRevoked reports whether any of ids is revoked.
func (l *RedisRevocations) AnyRevoked(ctx context.Context, ids ...string) (bool, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = l.key(id)
	}
	n, err := l.rdb.Exists(ctx, keys...).Result()
	if err != nil {
		return false, fmt.Errorf("check revoked tokens: %w", err)
	}
	return n > 0, nil
}

// RedisLimiter counts failures per key in fixed windows in Redis.
type RedisLimiter struct {
	rdb    *goredis.Client
	prefix string
}

// NewRedisLimiter returns a limiter over rdb whose keys start with prefix+"rl:".
func NewRedisLimiter(rdb *goredis.Client, prefix string) *RedisLimiter {
	return &RedisLimiter{rdb: rdb, prefix: prefix + "rl:"}
}

// incrScript increments a counter and starts its window on the first hit,
// atomically, so a crash between the two cannot leave a counter without expiry.
var incrScript = goredis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// Hit counts one failure for key in a window of length window.
func (l *RedisLimiter) Hit(ctx context.Context, key string, window time.Duration) error {
	if err := incrScript.Run(ctx, l.rdb, []string{l.prefix + key}, window.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("rate limit hit: %w", err)
	}
	return nil
}

// Blocked reports, when key has max or more failures in its window, how long
// until the window ends; 0 when key is not blocked.
func (l *RedisLimiter) Blocked(ctx context.Context, key string, max int) (time.Duration, error) {
	k := l.prefix + key
	n, err := l.rdb.Get(ctx, k).Int()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("rate limit check: %w", err)
	}
	if n < max {
		return 0, nil
	}
	ttl, err := l.rdb.PTTL(ctx, k).Result()
	if err != nil {
		return 0, fmt.Errorf("rate limit ttl: %w", err)
	}
	if ttl < time.Second {
		ttl = time.Second
	}
	return ttl, nil
}

// Reset forgets the failures of key (after a successful login).
func (l *RedisLimiter) Reset(ctx context.Context, key string) error {
	if err := l.rdb.Del(ctx, l.prefix+key).Err(); err != nil {
		return fmt.Errorf("rate limit reset: %w", err)
	}
	return nil
}
