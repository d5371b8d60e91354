// Command measurements is the Lambda function serving /measurements.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/cache"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/logging"
	"github.com/tempwatch/tempwatch/shared/measurements"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/redis"
)

func main() {
	r := config.NewReader(os.Getenv)
	dbURL := r.URL("DATABASE_URL", "", "postgres", "postgresql")
	rdb, rdbErr := redis.Open(r.URL("REDIS_URL", "redis://127.0.0.1:6379/0", "redis", "rediss"))
	prefix := r.String("REDIS_PREFIX", "tw:")
	jwt := auth.LoadJWTConfig(r)
	log := logging.New(os.Stderr, r.String("LOG_LEVEL", "info")).With("function", "measurements")
	if err := r.Err(); err != nil || rdbErr != nil {
		fmt.Fprintln(os.Stderr, err, rdbErr)
		os.Exit(1)
	}
	db, err := postgres.Open(context.Background(), dbURL)
	if err != nil {
		log.Error("start-up failed", "error", err)
		os.Exit(1)
	}
	verifier := auth.NewVerifier(jwt).WithRevocations(auth.NewRedisRevocations(rdb, prefix))
	lambdahttp.Start(auth.MiddlewareLog(verifier, log, measurements.NewHandler(postgres.NewMeasurementStore(db), postgres.NewSensorStore(db),
		cache.New(rdb, cache.Options{Prefix: prefix}), log)))
}
