// Command export is the Lambda function serving readings and daily
// statistics as CSV (see shared/export). Its routes' integrations stream
// (ResponseTransferMode: STREAM in template.yaml), so an export is not held
// to API Gateway's 10 MB and 29 s.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

func main() {
	lambdahttp.StartStreaming(app.Export(app.MustLoad("export", app.Needs{Tokens: app.VerifiesTokens})))
}
