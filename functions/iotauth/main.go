// Command iotauth is the AWS IoT Core custom authorizer: it checks a
// device's username, client id and device key at CONNECT and returns the
// policy of what that device may do (see shared/awsiot).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/awsiot"
	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/postgres"
)

func main() {
	env := app.MustLoad("iotauth", app.Needs{})
	keys := ingest.NewDeviceCache(postgres.NewDeviceStore(env.DB), env.Redis, ingest.DeviceCacheOptions{Prefix: env.RedisPrefix})
	authority, err := awsiot.NewAuthority(keys)
	if err != nil {
		app.Exit("iotauth", err)
	}
	lambda.Start(awsiot.NewHandler(authority, env.Log).Handle)
}
