// Command sensors is the Lambda function serving /sensors.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/sensors"
)

func main() {
	env := app.MustLoad("sensors", app.Needs{JWT: true})
	caches := redis.NewSensorCaches(env.Redis, postgres.NewReadingStore(env.DB))
	lambdahttp.Start(env.HTTP(sensors.NewHandler(postgres.NewSensorStore(env.DB), caches, env.Log)))
}
