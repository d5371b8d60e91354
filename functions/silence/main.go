// Command silence is the scheduled Lambda function that opens silent
// alarms: on template.yaml's schedule it opens one for every sensor that
// has sent nothing for its silence threshold (shared/silence).
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/silence"
)

func main() {
	env := app.MustLoad("silence", app.Needs{NoRedis: true})
	lambdahttp.StartEvents(silence.NewSweeper(postgres.NewSilenceStore(env.DB), env.Log).HandleEvent)
}
