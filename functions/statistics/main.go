// Command statistics is the Lambda function serving daily temperature
// averages (see shared/statistics).
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

func main() {
	lambdahttp.Start(app.Statistics(app.MustLoad("statistics", app.Needs{Tokens: app.VerifiesTokens})))
}
