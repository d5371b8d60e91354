// Command migrate is the deploy step that brings the PostgreSQL schema to
// the migrations this build embeds (see shared/migrate). Run as a plain
// command (no AWS_LAMBDA_RUNTIME_API: make migrate, compose's migrate
// service, devstack) it migrates DATABASE_URL once and exits 0, or 1 naming
// what failed; under Lambda it answers template.yaml's SchemaMigration
// custom resource, so sam deploy runs it before the other functions, and
// plain invokes.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/migrate"
)

func main() {
	cfg, err := migrate.LoadConfig(os.Getenv)
	if err != nil {
		config.Exit("migrate", err)
	}
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		lambda.Start(migrate.NewHandler(cfg.DatabaseURL, os.Stdout).Handle)
	}
	if _, err := migrate.Once(context.Background(), cfg.DatabaseURL, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
