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
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
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

// errUnavailable is what callers see of a MongoDB they cannot reach.
var errUnavailable = tempwatch.Errorf(tempwatch.EUNAVAILABLE, "The archive is temporarily unavailable; retry later.")

// translate wraps a driver error with what failed, and marks the errors of
// a server that cannot be reached (down, cut off, too slow) EUNAVAILABLE,
// so the API answers 503, not 500.
func translate(err error, what string) error {
	var sel topology.ServerSelectionError
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &sel) {
		return fmt.Errorf("mongo: %s: %w: %w", what, errUnavailable, err)
	}
	return fmt.Errorf("mongo: %s: %w", what, err)
}
