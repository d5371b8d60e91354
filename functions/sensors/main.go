// Command sensors is the Lambda function serving /sensors.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/logging"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/sensors"
)

func main() {
	r := config.NewReader(os.Getenv)
	dbURL := r.URL("DATABASE_URL", "", "postgres", "postgresql")
	rdb, rdbErr := redis.Open(r.URL("REDIS_URL", "redis://127.0.0.1:6379/0", "redis", "rediss"))
	prefix := r.String("REDIS_PREFIX", "tw:")
	jwt := auth.LoadJWTConfig(r)
	log := logging.New(os.Stderr, r.String("LOG_LEVEL", "info")).With("function", "sensors")
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
	lambdahttp.Start(auth.MiddlewareLog(verifier, log, sensors.NewHandler(postgres.NewSensorStore(db), sensors.NewRedisCaches(rdb, prefix, postgres.NewReadingQueryStore(db)), log)))
}
