package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var (
	_ tempwatch.RevocationList = (*Revocations)(nil)
	_ tempwatch.Limiter        = (*Limiter)(nil)
)

// Revocations keeps revoked token and session ids, each expiring when the
// tokens it covers would. Its errors reach the caller (the exception of the
// package documentation's rule 5).
type Revocations struct{ c *Client }

// NewRevocations returns the revocation list over c.
func NewRevocations(c *Client) *Revocations { return &Revocations{c: c} }

// Revoke marks id revoked for ttl (at least one second).
func (l *Revocations) Revoke(ctx context.Context, id string, ttl time.Duration) error {
	ttl = max(ttl, time.Second)
	return l.c.do(ctx, opRevokedAdd, func(ctx context.Context, rdb *goredis.Client) error {
		return rdb.Set(ctx, l.c.revokedKey(id), 1, ttl).Err()
	})
}

// AnyRevoked reports whether any of ids is revoked.
func (l *Revocations) AnyRevoked(ctx context.Context, ids ...string) (bool, error) {
	keys := l.keys(ids)
	var n int64
	err := l.c.do(ctx, opRevokedCheck, func(ctx context.Context, rdb *goredis.Client) error {
		var err error
		n, err = rdb.Exists(ctx, keys...).Result()
		return err
	})
	return n > 0, err
}

func (l *Revocations) keys(ids []string) []string {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = l.c.revokedKey(id)
	}
	return keys
}

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
