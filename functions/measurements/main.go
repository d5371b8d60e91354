// Command measurements is the Lambda function serving /measurements.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/cache"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/measurements"
	"github.com/tempwatch/tempwatch/shared/postgres"
)

func main() {
	env := app.MustLoad("measurements", app.Needs{JWT: true})
	h := measurements.NewHandler(postgres.NewReadingStore(env.DB), postgres.NewSensorStore(env.DB), env.Cache(cache.Options{}), env.Log)
	lambdahttp.Start(env.HTTP(h))
}
