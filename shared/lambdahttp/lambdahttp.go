// Package lambdahttp runs an http.Handler as a Lambda function behind an API
// Gateway REST API (proxy integration, payload format 1.0). Only mains use it.
package lambdahttp

import (
	"net/http"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// Start serves h for API Gateway REST proxy events until the runtime stops.
func Start(h http.Handler) {
	lambda.Start(httpadapter.New(h).ProxyWithContext)
}
