package sensors

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tempwatch/tempwatch/shared/cache"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Caches are what the sensors handler reads through and invalidates: the
// latest reading of each sensor (shown with it), and after each commit the
// cached copies that went stale. Invalidation errors are logged, never
// returned to the caller: the write is committed, and every entry expires.
type Caches interface {
	// LatestReadings returns the latest reading of each of sensorIDs that has one.
	LatestReadings(ctx context.Context, sensorIDs []string) (map[string]tempwatch.Reading, error)
	// ForgetDevice drops ingest's cached lookups of the sensor as it was: by
	// topic (client slug, device id) and by device key hash. After a key
	// rotation the old key then stops authenticating at once in Redis (and
	// within the in-process TTL of running ingest functions).
	ForgetDevice(ctx context.Context, s *tempwatch.Sensor) error
	// InvalidateSensor drops cached readings and aggregates of the sensors.
	InvalidateSensor(ctx context.Context, sensorIDs ...string) error
}

// RedisCaches are the Redis caches: the read cache (cache.Cache), and
// ingest's device lookups, dropped by the key layout that
// ingest.DeviceCache documents for writers (prefix + "ingest:device:<slug>/<device-id>"
// and prefix + "ingest:devkey:<hex SHA-256 of the key>").
type RedisCaches struct {
	*cache.Cache
	rdb     *goredis.Client
	prefix  string
	timeout time.Duration
}

var _ Caches = (*RedisCaches)(nil)

// NewRedisCaches returns the caches over rdb with the product's key prefix
// (default "tw:"), reading latest readings missing from Redis from store.
func NewRedisCaches(rdb *goredis.Client, prefix string, store cache.LatestStore) *RedisCaches {
	if prefix == "" {
		prefix = "tw:"
	}
	return &RedisCaches{Cache: cache.New(rdb, cache.Options{Prefix: prefix, Store: store}),
		rdb: rdb, prefix: prefix, timeout: 200 * time.Millisecond}
}

// ForgetDevice deletes the sensor's device lookups.
func (i *RedisCaches) ForgetDevice(ctx context.Context, s *tempwatch.Sensor) error {
	if i.rdb == nil {
		return cache.ErrNoRedis
	}
	if s.ClientSlug == "" || len(s.KeyHash) == 0 {
		return errors.New("sensors: forget device: sensor lacks client slug or key hash")
	}
	ctx, cancel := context.WithTimeout(ctx, i.timeout)
	defer cancel()
	return i.rdb.Del(ctx,
		i.prefix+"ingest:device:"+s.ClientSlug+"/"+s.DeviceID,
		i.prefix+"ingest:devkey:"+hex.EncodeToString(s.KeyHash)).Err()
}
