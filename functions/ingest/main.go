// Command ingest is the Lambda function that stores readings: batches the
// MQTT bridge invokes it with, SQS batches from the AWS IoT topic rule, and
// POST /ingest/readings from devices.
package main

import (
	"context"
	"time"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/postgres"
)

func main() {
	ctx := context.Background()
	var cfg ingest.Config
	var mongoURL, mongoDB string
	env := app.MustLoad("ingest", app.Needs{Config: func(r *config.Reader) {
		mongoURL = r.URL("MONGODB_URL", "", "mongodb", "mongodb+srv")
		mongoDB = r.String("MONGODB_DATABASE", "tempwatch")
		cfg.MaxFuture = r.Duration("INGEST_MAX_FUTURE", 5*time.Minute, time.Second, 24*time.Hour)
		cfg.MaxAge = r.Duration("INGEST_MAX_AGE", 365*24*time.Hour, time.Hour, 20*365*24*time.Hour)
		cfg.ArchiveTimeout = r.Duration("INGEST_ARCHIVE_TIMEOUT", 2*time.Second, 100*time.Millisecond, time.Minute)
	}})
	// MongoDB may be down: readings are stored all the same, the archive
	// waits in the PostgreSQL outbox.
	mc, err := mongo.Connect(mongoURL)
	if err != nil {
		config.Exit("ingest", err)
	}
	payloads := mongo.NewPayloadStore(mc.Database(mongoDB))
	ictx, cancel := context.WithTimeout(ctx, cfg.ArchiveTimeout)
	if err := payloads.EnsureIndexes(ictx); err != nil {
		env.Log.Warn("mongo indexes", "error", err)
	}
	cancel()
	cfg.Outbox = postgres.NewArchiveOutbox(env.DB)
	h, svc := app.Ingest(env, payloads, cfg)
	lambdahttp.StartWithEvents(h, ingest.BatchEventHandler(svc))
}
