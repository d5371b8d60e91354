// Command clients is the Lambda function serving /clients.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/clients"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/postgres"
)

func main() {
	env := app.MustLoad("clients", app.Needs{JWT: true})
	lambdahttp.Start(env.HTTP(clients.NewHandler(postgres.NewClientStore(env.DB), env.Log)))
}
