// Command mqttauth is the Lambda function EMQX asks, over its HTTP
// authentication and authorization contract, who may connect and what each
// client may publish and subscribe to: POST /mqtt/authn and /mqtt/authz
// (see shared/emqx, and shared/deviceauth for the rules).
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/emqx"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
)

func main() {
	var cfg emqx.Config
	env := app.MustLoad("mqttauth", app.Needs{Config: func(r *config.Reader) { cfg = emqx.LoadConfig(r) }})
	h, err := app.MQTTAuth(env, cfg)
	if err != nil {
		config.Exit("mqttauth", err)
	}
	lambdahttp.Start(h)
}
