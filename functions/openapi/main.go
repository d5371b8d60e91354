// Command openapi is the Lambda function serving GET /openapi.json.
package main

import (
	"os"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/logging"
	"github.com/tempwatch/tempwatch/shared/openapi"
)

func main() {
	r := config.NewReader(os.Getenv)
	log := logging.New(os.Stderr, r.String("LOG_LEVEL", "info")).With("function", "openapi")
	if err := r.Err(); err != nil {
		config.Exit("openapi", err)
	}
	if _, err := openapi.JSON(); err != nil {
		config.Exit("openapi", err)
	}
	lambdahttp.Start(app.OpenAPI(log))
}
