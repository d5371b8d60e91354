// Command users is the Lambda function serving /users.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

func main() {
	lambdahttp.Start(app.Users(app.MustLoad("users", app.Needs{Tokens: app.VerifiesTokens})))
}
