// Command measurements is the Lambda function serving /measurements.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

func main() {
	lambdahttp.Start(app.Measurements(app.MustLoad("measurements", app.Needs{Tokens: app.VerifiesTokens})))
}
