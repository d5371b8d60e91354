// Package mongotest gives each integration test a database of its own on
// the real MongoDB-compatible server named by MONGODB_URL (FerretDB in
// `make test`), dropped after.
package mongotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	tmongo "github.com/tempwatch/tempwatch/shared/mongo"
)

// URL returns MONGODB_URL; tests fail without it (make test sets it). Under
// -short (make test-unit, the tier that runs without services) the test is
// skipped instead, whether or not MONGODB_URL is set.
func URL(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("mongotest: needs MongoDB (FerretDB), so not run with -short (make test-unit)")
	}
	u := os.Getenv("MONGODB_URL")
	if u == "" {
		tb.Fatal("mongotest: MONGODB_URL is not set; run the tests with `make test`, which starts FerretDB")
	}
	return u
}

// MustDatabase returns a fresh database on the server.
func MustDatabase(tb testing.TB) *mongo.Database {
	tb.Helper()
	c, err := tmongo.Open(context.Background(), URL(tb))
	if err != nil {
		tb.Fatalf("mongotest: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := c.Database("t_" + hex.EncodeToString(b[:]))
	tb.Cleanup(func() {
		_ = db.Drop(context.Background())
		_ = c.Disconnect(context.Background())
	})
	return db
}
