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
	"github.com/tempwatch/tempwatch/shared/redis"
)

func main() {
	env := app.MustLoad("iotauth", app.Needs{})
	keys := ingest.NewDeviceCache(redis.NewDeviceStore(env.Redis, postgres.NewDeviceStore(env.DB)), ingest.DeviceCacheOptions{})
	authority, err := awsiot.NewAuthority(keys)
	if err != nil {
		app.Exit("iotauth", err)
	}
	lambda.Start(awsiot.NewHandler(authority, env.Log).Handle)
}
