// Command iotauth is the AWS IoT Core custom authorizer: it checks a
// device's username, client id and device key at CONNECT and returns the
// policy of what that device may do (see shared/awsiot).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/config"
)

func main() {
	h, err := app.IoTAuth(app.MustLoad("iotauth", app.Needs{}))
	if err != nil {
		config.Exit("iotauth", err)
	}
	lambda.Start(h.Handle)
}
