// Command alarms is the Lambda function serving /alarms: alarms and their
// acknowledgements.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

func main() {
	lambdahttp.Start(app.Alarms(app.MustLoad("alarms", app.Needs{Tokens: app.VerifiesTokens})))
}
