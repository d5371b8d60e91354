// Command auth is the Lambda function serving /auth: login, refresh, logout, me, password.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/auth/session"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/postgres"
)

func main() {
	env := app.MustLoad("auth", app.Needs{JWT: true})
	lambdahttp.Start(env.HTTP(session.NewHandler(session.Deps{
		Users:       postgres.NewUserStore(env.DB),
		Tokens:      postgres.NewRefreshTokenStore(env.DB),
		JWT:         env.JWT,
		Revocations: auth.NewRedisRevocations(env.Redis, env.RedisPrefix),
		Limiter:     auth.NewRedisLimiter(env.Redis, env.RedisPrefix),
		Log:         env.Log,
	})))
}
