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

// Invalidator is told, after each commit, which cached copies of sensor data
// are stale. Errors are logged, never returned to the caller: the write is
// committed, and every entry also expires.
type Invalidator interface {
	// ForgetDevice drops ingest's cached lookups of the sensor as it was: by
	// topic (client slug, device id) and by device key hash. After a key
	// rotation the old key then stops authenticating at once in Redis (and
	// within the in-process TTL of running ingest functions).
	ForgetDevice(ctx context.Context, s *tempwatch.Sensor) error
	// InvalidateSensor drops cached readings and aggregates of the sensors.
	InvalidateSensor(ctx context.Context, sensorIDs ...string) error
}

// RedisInvalidator drops cache entries in Redis: the read cache through
// cache.Cache, and ingest's device lookups by the key layout that
// ingest.DeviceCache documents for writers (prefix + "ingest:device:<slug>/<device-id>"
// and prefix + "ingest:devkey:<hex SHA-256 of the key>").
type RedisInvalidator struct {
	*cache.Cache
	rdb     *goredis.Client
	prefix  string
	timeout time.Duration
}

var _ Invalidator = (*RedisInvalidator)(nil)

// NewRedisInvalidator returns an Invalidator over rdb with the product's key
// prefix (default "tw:").
func NewRedisInvalidator(rdb *goredis.Client, prefix string) *RedisInvalidator {
	if prefix == "" {
		prefix = "tw:"
	}
	return &RedisInvalidator{Cache: cache.New(rdb, cache.Options{Prefix: prefix}), rdb: rdb, prefix: prefix, timeout: 200 * time.Millisecond}
}

// ForgetDevice deletes the sensor's device lookups.
func (i *RedisInvalidator) ForgetDevice(ctx context.Context, s *tempwatch.Sensor) error {
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
