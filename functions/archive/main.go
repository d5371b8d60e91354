// Command archive is the Lambda function serving what MongoDB keeps: the
// dead letters of refused messages and readings' raw payloads (see
// shared/archive). A schedule also invokes it to expire dead letters.
package main

import (
	"context"
	"time"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/archive"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func main() {
	ctx := context.Background()
	var ttl time.Duration
	env := app.MustLoad("archive", app.Needs{Tokens: app.VerifiesTokens, Mongo: true, Config: func(r *config.Reader) {
		ttl = r.Duration("DEAD_LETTER_TTL", tempwatch.DefaultDeadLetterTTL, time.Minute, 10*365*24*time.Hour)
	}})
	store := mongo.NewPayloadStore(env.Mongo)
	if err := store.EnsureIndexes(ctx); err != nil {
		env.Log.Warn("mongo indexes", "error", err)
	}
	expiry := archive.NewExpiry(store, ttl, env.Log)
	expiry.Prepare(ctx)
	lambdahttp.StartWithEvents(app.Archive(env, store, ttl), expiry.HandleEvent)
}
