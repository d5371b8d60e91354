// Command sensors is the Lambda function serving /sensors.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

func main() {
	lambdahttp.Start(app.Sensors(app.MustLoad("sensors", app.Needs{Tokens: app.VerifiesTokens})))
}
