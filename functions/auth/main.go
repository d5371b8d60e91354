// Command auth is the Lambda function serving /auth: login, refresh, logout, me, password.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

func main() {
	lambdahttp.Start(app.Auth(app.MustLoad("auth", app.Needs{Tokens: app.SignsTokens})))
}
