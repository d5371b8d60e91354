package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.Limiter = (*Limiter)(nil)

// Limiter counts failures per key in fixed windows. With Redis down it
// reports nobody blocked and counts nothing (tempwatch.Limiter).
type Limiter struct{ c *Client }

// NewLimiter returns the limiter over c.
func NewLimiter(c *Client) *Limiter { return &Limiter{c: c} }

// incrScript increments a counter and starts its window on the first hit,
// atomically, so a crash between the two cannot leave a counter without expiry.
var incrScript = goredis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// Hit counts one failure for key in a window of length window.
func (l *Limiter) Hit(ctx context.Context, key string, window time.Duration) {
	_ = l.c.do(ctx, opLimitHit, func(ctx context.Context, rdb *goredis.Client) error {
		return incrScript.Run(ctx, rdb, []string{l.c.limitKey(key)}, window.Milliseconds()).Err()
	})
}

// Blocked reports, when key has limit or more failures in its window, how
// long until the window ends (at least a second); 0 when key is not blocked.
func (l *Limiter) Blocked(ctx context.Context, key string, limit int) time.Duration {
	var wait time.Duration
	_ = l.c.do(ctx, opLimitCheck, func(ctx context.Context, rdb *goredis.Client) error {
		k := l.c.limitKey(key)
		n, err := rdb.Get(ctx, k).Int()
		switch {
		case errors.Is(err, goredis.Nil):
			return nil
		case err != nil:
			return err
		case n < limit:
			return nil
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			return err
		}
		wait = max(ttl, time.Second)
		return nil
	})
	return wait
}

// Reset forgets the failures of key (after a successful login).
func (l *Limiter) Reset(ctx context.Context, key string) {
	_ = l.c.do(ctx, opLimitReset, func(ctx context.Context, rdb *goredis.Client) error {
		return rdb.Del(ctx, l.c.limitKey(key)).Err()
	})
}
