// Command webhooks is the Lambda function serving /webhooks: a client's
// webhooks, their secrets and their deliveries (see shared/webhooks).
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/webhooks"
)

func main() {
	var guard *webhooks.Guard
	env := app.MustLoad("webhooks", app.Needs{Tokens: app.VerifiesTokens, Config: func(r *config.Reader) {
		guard = webhooks.LoadGuard(r)
	}})
	lambdahttp.Start(app.Webhooks(env, guard))
}
