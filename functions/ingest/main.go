// Command ingest is the Lambda function that stores readings: batches the
// MQTT bridge invokes it with, and POST /ingest/readings from devices.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tempwatch/tempwatch/shared/cache"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/logging"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/redis"
)

func main() {
	ctx := context.Background()
	r := config.NewReader(os.Getenv)
	dbURL := r.URL("DATABASE_URL", "", "postgres", "postgresql")
	mongoURL := r.URL("MONGODB_URL", "", "mongodb", "mongodb+srv")
	rdb, rdbErr := redis.Open(r.URL("REDIS_URL", "redis://127.0.0.1:6379/0", "redis", "rediss"))
	prefix := r.String("REDIS_PREFIX", "tw:")
	mongoDB := r.String("MONGODB_DATABASE", "tempwatch")
	cfg := ingest.Config{
		MaxFuture: r.Duration("INGEST_MAX_FUTURE", 5*time.Minute, time.Second, 24*time.Hour),
		MaxAge:    r.Duration("INGEST_MAX_AGE", 365*24*time.Hour, time.Hour, 20*365*24*time.Hour),
	}
	log := logging.New(os.Stderr, r.String("LOG_LEVEL", "info")).With("function", "ingest")
	if err := r.Err(); err != nil || rdbErr != nil {
		fmt.Fprintln(os.Stderr, err, rdbErr)
		os.Exit(1)
	}
	db, err := postgres.Open(ctx, dbURL)
	if err != nil {
		log.Error("start-up failed", "error", err)
		os.Exit(1)
	}
	mc, err := mongo.Open(ctx, mongoURL)
	if err != nil {
		log.Error("start-up failed", "error", err)
		os.Exit(1)
	}
	payloads := mongo.NewPayloadStore(mc.Database(mongoDB))
	if err := payloads.EnsureIndexes(ctx); err != nil {
		log.Warn("mongo indexes", "error", err)
	}
	store := postgres.NewReadingStore(db)
	devices := ingest.NewDeviceCache(store, rdb, ingest.DeviceCacheOptions{Prefix: prefix})
	svc := ingest.NewService(devices, store, payloads, cache.New(rdb, cache.Options{Prefix: prefix}), log, cfg)
	lambdahttp.StartWithEvents(ingest.NewHandler(svc, log), ingest.BatchEventHandler(svc))
}
