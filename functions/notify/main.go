// Command notify is the scheduled Lambda function that delivers alarm
// events to webhooks: each run sends what is due, signed, and records every
// attempt (see shared/webhooks).
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/webhooks"
)

func main() {
	var guard *webhooks.Guard
	var opts webhooks.WorkerOptions
	env := app.MustLoad("notify", app.Needs{Config: func(r *config.Reader) {
		guard = webhooks.LoadGuard(r)
		opts.Timeout = r.Duration("WEBHOOK_TIMEOUT", 10*time.Second, time.Second, time.Minute)
		opts.Concurrency = r.Int("WEBHOOK_CONCURRENCY", 4, 1, 32)
	}})
	lambda.Start(app.Notify(env, guard, opts).HandleEvent)
}
