// Command auth is the Lambda function serving /auth: login, refresh, logout, me.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/auth/session"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/logging"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/redis"
)

func main() {
	r := config.NewReader(os.Getenv)
	dbURL := r.URL("DATABASE_URL", "", "postgres", "postgresql")
	rdb, rdbErr := redis.Open(r.URL("REDIS_URL", "redis://127.0.0.1:6379/0", "redis", "rediss"))
	prefix := r.String("REDIS_PREFIX", "tw:")
	jwt := auth.LoadJWTConfig(r)
	log := logging.New(os.Stderr, r.String("LOG_LEVEL", "info")).With("function", "auth")
	if err := r.Err(); err != nil || rdbErr != nil {
		fmt.Fprintln(os.Stderr, err, rdbErr)
		os.Exit(1)
	}
	db, err := postgres.Open(context.Background(), dbURL)
	if err != nil {
		log.Error("start-up failed", "error", err)
		os.Exit(1)
	}
	lambdahttp.Start(session.NewHandler(session.Deps{
		Users:       postgres.NewUserStore(db),
		Tokens:      postgres.NewRefreshTokenStore(db),
		JWT:         jwt,
		Revocations: auth.NewRedisRevocations(rdb, prefix),
		Limiter:     auth.NewRedisLimiter(rdb, prefix),
		Log:         log,
	}))
}
