// Command users is the Lambda function serving /users.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/users"
)

func main() {
	env := app.MustLoad("users", app.Needs{JWT: true})
	lambdahttp.Start(env.HTTP(users.NewHandler(postgres.NewUserStore(env.DB), env.Log)))
}
