// Command auth is the Lambda function serving /auth: login, refresh, logout, me, password.
package main

import (
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/auth/session"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/redis"
)

func main() {
	env := app.MustLoad("auth", app.Needs{JWT: true})
	lambdahttp.Start(env.HTTP(session.NewHandler(session.Deps{
		Users:       postgres.NewUserStore(env.DB),
		Tokens:      postgres.NewRefreshTokenStore(env.DB),
		JWT:         env.JWT,
		Revocations: redis.NewRevocations(env.Redis),
		Limiter:     redis.NewLimiter(env.Redis),
		Log:         env.Log,
	})))
}
