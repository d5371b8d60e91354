package mongo_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// A MongoDB nobody answers on is EUNAVAILABLE to readers (a 503), never an
// internal error.
func TestUnreachableServerIsUnavailable(t *testing.T) {
	c, err := driver.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1/").SetServerSelectionTimeout(200 * time.Millisecond))
	require.NoError(t, err)
	defer func() { _ = c.Disconnect(context.Background()) }()
	s := mongo.NewPayloadStore(c.Database("nowhere"))
	ctx := context.Background()

	_, err = s.FindDeadLetters(ctx, tempwatch.DeadLetterFilter{AllClients: true})
	assert.Equal(t, tempwatch.EUNAVAILABLE, tempwatch.ErrorCode(err), "FindDeadLetters: %v", err)
	_, err = s.FindDeadLetterByID(ctx, "0123456789abcdef0123456789abcdef")
	assert.Equal(t, tempwatch.EUNAVAILABLE, tempwatch.ErrorCode(err), "FindDeadLetterByID: %v", err)
	_, err = s.FindPayload(ctx, "00000000-0000-0000-0000-000000000001", time.Now())
	assert.Equal(t, tempwatch.EUNAVAILABLE, tempwatch.ErrorCode(err), "FindPayload: %v", err)
}
