// Command readings is the Lambda function serving a sensor's readings and
// its latest reading (see shared/readings).
package main

import (
	"time"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

func main() {
	var localTTL time.Duration
	env := app.MustLoad("readings", app.Needs{Tokens: app.VerifiesTokens, Config: func(r *config.Reader) {
		// Off by default: other instances' writes do not reach process memory.
		localTTL = r.Duration("LATEST_LOCAL_TTL", 0, 0, time.Minute)
	}})
	lambdahttp.Start(app.Readings(env, localTTL))
}
