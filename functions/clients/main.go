// Command clients is the Lambda function serving /clients.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

func main() {
	lambdahttp.Start(app.Clients(app.MustLoad("clients", app.Needs{Tokens: app.VerifiesTokens})))
}
