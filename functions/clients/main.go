// Command clients is the Lambda function serving /clients.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tempwatch/tempwatch/shared/clients"
	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/logging"
	"github.com/tempwatch/tempwatch/shared/postgres"
)

func main() {
	r := config.NewReader(os.Getenv)
	dbURL := r.URL("DATABASE_URL", "", "postgres", "postgresql")
	log := logging.New(os.Stderr, r.String("LOG_LEVEL", "info")).With("function", "clients")
	if err := r.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	db, err := postgres.Open(context.Background(), dbURL)
	if err != nil {
		log.Error("start-up failed", "error", err)
		os.Exit(1)
	}
	lambdahttp.Start(clients.NewHandler(postgres.NewClientStore(db), log))
}
