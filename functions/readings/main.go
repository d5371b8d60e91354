// Command readings is the Lambda function serving the readings routes (see shared/readings).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/cache"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/logging"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/readings"
	"github.com/tempwatch/tempwatch/shared/redis"
)

func main() {
	r := config.NewReader(os.Getenv)
	dbURL := r.URL("DATABASE_URL", "", "postgres", "postgresql")
	rdb, rdbErr := redis.Open(r.URL("REDIS_URL", "redis://127.0.0.1:6379/0", "redis", "rediss"))
	prefix := r.String("REDIS_PREFIX", "tw:")
	localTTL := r.Duration("LATEST_LOCAL_TTL", 0, 0, time.Minute)
	jwt := auth.LoadJWTConfig(r)
	log := logging.New(os.Stderr, r.String("LOG_LEVEL", "info")).With("function", "readings")
	if err := r.Err(); err != nil || rdbErr != nil {
		fmt.Fprintln(os.Stderr, err, rdbErr)
		os.Exit(1)
	}
	db, err := postgres.Open(context.Background(), dbURL)
	if err != nil {
		log.Error("start-up failed", "error", err)
		os.Exit(1)
	}
	store := postgres.NewReadingQueryStore(db)
	c := cache.New(rdb, cache.Options{Prefix: prefix, Store: store, LocalTTL: localTTL})
	verifier := auth.NewVerifier(jwt).WithRevocations(auth.NewRedisRevocations(rdb, prefix))
	lambdahttp.Start(auth.MiddlewareLog(verifier, log, readings.NewHandler(store, c, log)))
}
