package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/redis"
)

// NewAuthority returns the decision the embedded broker asks, checking
// device keys as the ingest function does (PostgreSQL through
// ingest.DeviceCache, with its Redis entries). It reads DATABASE_URL,
// REDIS_URL, REDIS_PREFIX, the bridge's credential (deviceauth.LoadBridge)
// and DEVICE_CACHE_TTL (how long a rotated or deleted key may still connect;
// default 30 s, as for the ingest function) from getenv; close releases
// the connections.
func NewAuthority(ctx context.Context, getenv config.Getenv) (auth *deviceauth.Authority, closeFn func(), err error) {
	r := config.NewReader(getenv)
	dbURL := r.URL("DATABASE_URL", "", "postgres", "postgresql")
	redisURL := r.URL("REDIS_URL", "redis://127.0.0.1:6379/0", "redis", "rediss")
	prefix := r.String("REDIS_PREFIX", redis.DefaultPrefix)
	ttl := r.Duration("DEVICE_CACHE_TTL", 30*time.Second, time.Second, 30*time.Second)
	bridge := deviceauth.LoadBridge(r)
	if err := r.Err(); err != nil {
		return nil, nil, fmt.Errorf("broker: %w", err)
	}
	db, err := postgres.Open(ctx, dbURL)
	if err != nil {
		return nil, nil, fmt.Errorf("broker: %w", err)
	}
	rdb, err := redis.Open(redisURL, redis.Options{Prefix: prefix})
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("broker: %w", err)
	}
	devices := ingest.NewDeviceCache(redis.NewDeviceStore(rdb, postgres.NewDeviceStore(db)), ingest.DeviceCacheOptions{LocalTTL: ttl})
	if auth, err = deviceauth.New(devices, bridge); err != nil {
		_ = rdb.Close()
		db.Close()
		return nil, nil, err
	}
	return auth, func() { _ = rdb.Close(); db.Close() }, nil
}
