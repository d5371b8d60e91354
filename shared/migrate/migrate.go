// Package migrate is the deploy step that brings a PostgreSQL database to
// the schema this build embeds (shared/postgres/migrations); the functions
// only check it at start. functions/migrate runs it once as a plain command
// (make migrate, compose's migrate service, devstack), or as a Lambda
// function that answers CloudFormation custom-resource events (template.yaml's
// SchemaMigration, so that sam deploy runs it before the functions) and
// plain invokes.
package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/postgres"
)

// PhysicalID names the schema as a CloudFormation resource. It never
// changes, so an update is never taken for a replacement (which would
// delete the old resource).
const PhysicalID = "tempwatch-schema"

// responseMargin is the time kept, under Lambda's deadline, to tell
// CloudFormation that a run failed: a custom resource that never answers
// holds the stack for an hour.
const responseMargin = 10 * time.Second

// Config is what the migrate step reads.
type Config struct {
	DatabaseURL string
}

// LoadConfig reads DATABASE_URL (required) through getenv.
func LoadConfig(getenv config.Getenv) (Config, error) {
	r := config.NewReader(getenv)
	c := Config{DatabaseURL: r.URL("DATABASE_URL", "", "postgres", "postgresql")}
	return c, r.Err()
}

// Once migrates the database at url, writing a line per step to progress,
// and closes its connections.
func Once(ctx context.Context, url string, progress io.Writer) (postgres.MigrateResult, error) {
	pool, err := postgres.Connect(ctx, url)
	if err != nil {
		return postgres.MigrateResult{}, err
	}
	defer pool.Close()
	return postgres.Migrate(ctx, pool, progress)
}

// Handler answers the migrate function's Lambda invocations.
type Handler struct {
	url      string
	progress io.Writer
	respond  cfn.CustomResourceLambdaFunction
}

// NewHandler returns the handler that migrates the database at url,
// writing its progress lines to progress (the function's log).
func NewHandler(url string, progress io.Writer) *Handler {
	h := &Handler{url: url, progress: progress}
	h.respond = cfn.LambdaWrap(h.customResource)
	return h
}

// Handle takes a CloudFormation custom-resource event, which it answers at
// the event's ResponseURL (Create and Update migrate; Delete leaves the
// schema as it is), or any other event (a plain invoke such as `{}`), which
// migrates and returns the postgres.MigrateResult.
func (h *Handler) Handle(ctx context.Context, event json.RawMessage) (any, error) {
	var e cfn.Event
	if err := json.Unmarshal(event, &e); err == nil && e.RequestType != "" && e.ResponseURL != "" {
		fmt.Fprintf(h.progress, "CloudFormation %s of %s (stack %s)\n", e.RequestType, e.LogicalResourceID, e.StackID)
		return h.respond(ctx, e)
	}
	return h.migrate(ctx)
}

func (h *Handler) customResource(ctx context.Context, e cfn.Event) (string, map[string]any, error) {
	id := e.PhysicalResourceID
	if id == "" {
		id = PhysicalID
	}
	if e.RequestType == cfn.RequestDelete {
		// Deleting the stack (or this resource) never drops data.
		fmt.Fprintln(h.progress, "nothing to do on Delete: the schema stays as it is")
		return id, nil, nil
	}
	res, err := h.migrate(ctx)
	if err != nil {
		return id, nil, err
	}
	return id, map[string]any{"SchemaVersion": res.Version}, nil
}

// migrate runs Once, stopping early enough before Lambda's deadline to
// report a failure.
func (h *Handler) migrate(ctx context.Context) (postgres.MigrateResult, error) {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-responseMargin))
		defer cancel()
	}
	res, err := Once(ctx, h.url, h.progress)
	if err != nil {
		fmt.Fprintf(h.progress, "failed: %v\n", err)
	}
	return res, err
}
