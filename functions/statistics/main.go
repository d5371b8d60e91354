// Command statistics is the Lambda function serving daily temperature
// averages (see shared/statistics).
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/cache"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/statistics"
)

func main() {
	env := app.MustLoad("statistics", app.Needs{JWT: true})
	store := postgres.NewReadingStore(env.DB)
	lambdahttp.Start(env.HTTP(statistics.NewHandler(store, env.Cache(cache.Options{Store: store}), env.Log)))
}
