// Command measurements is the Lambda function serving /measurements.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/measurements"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/redis"
)

func main() {
	env := app.MustLoad("measurements", app.Needs{JWT: true})
	h := measurements.NewHandler(postgres.NewReadingStore(env.DB), postgres.NewSensorStore(env.DB), redis.NewCache(env.Redis, redis.CacheOptions{}), env.Log)
	lambdahttp.Start(env.HTTP(h))
}
