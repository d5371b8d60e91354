// Package mongo is the MongoDB adapter: raw device payloads and dead letters.
// It keeps to what both MongoDB and FerretDB support (inserts, finds,
// indexes, counts); aggregation lives in PostgreSQL.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Open connects to url and checks the server answers.
func Open(ctx context.Context, url string) (*mongo.Client, error) {
	c, err := Connect(url)
	if err != nil {
		return nil, err
	}
	hosts := options.Client().ApplyURI(url).Hosts
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pingCtx, nil); err != nil {
		_ = c.Disconnect(context.Background())
		return nil, fmt.Errorf("mongo: cannot reach %v (is MongoDB or FerretDB running? `make run` and `make test` start FerretDB when MONGODB_URL is unset): %w", hosts, err)
	}
	return c, nil
}

// Connect returns a client for url without waiting for the server, for
// programs that must start while MongoDB is down: the driver connects when
// it is first used, and again after the server comes back.
func Connect(url string) (*mongo.Client, error) {
	opts := options.Client().ApplyURI(url).SetServerSelectionTimeout(5 * time.Second).SetConnectTimeout(5 * time.Second)
	if err := opts.Validate(); err != nil {
		return nil, errors.New("mongo: MONGODB_URL is not a valid mongodb:// URL")
	}
	c, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: connect: %w", err)
	}
	return c, nil
}
