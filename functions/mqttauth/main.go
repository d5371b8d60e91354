// Command mqttauth is the Lambda function EMQX asks, over its HTTP
// authentication and authorization contract, who may connect and what each
// client may publish and subscribe to: POST /mqtt/authn and /mqtt/authz
// (see shared/emqx, and shared/deviceauth for the rules).
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/emqx"
	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/redis"
)

func main() {
	var cfg emqx.Config
	env := app.MustLoad("mqttauth", app.Needs{Config: func(r *config.Reader) { cfg = emqx.LoadConfig(r) }})
	keys := ingest.NewDeviceCache(redis.NewDeviceStore(env.Redis, postgres.NewDeviceStore(env.DB)), ingest.DeviceCacheOptions{})
	authority, err := deviceauth.New(keys, cfg.Bridge)
	if err != nil {
		app.Exit("mqttauth", err)
	}
	h, err := emqx.NewHandler(authority, cfg, env.Log, nil)
	if err != nil {
		app.Exit("mqttauth", err)
	}
	lambdahttp.Start(app.Middleware(env.Log, nil, h))
}
