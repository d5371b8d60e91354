// Command console is the Lambda function serving the operators' admin
// console: GET /console (the page), GET /console/{asset} and
// GET /console/views/{view} (its ES modules and stylesheet). The page holds
// no data; it calls the REST API with the user's own token.
package main

import (
	"os"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/logging"
)

func main() {
	r := config.NewReader(os.Getenv)
	log := logging.New(os.Stderr, r.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error")).With("function", "console")
	if err := r.Err(); err != nil {
		config.Exit("console", err)
	}
	lambdahttp.Start(app.Console(log))
}
