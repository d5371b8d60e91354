package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tempwatch/tempwatch/shared/faultproxy"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func TestHandleBatchPostgresDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()

	viaProxy, proxy := e.proxiedPool(t)
	svc := e.service(viaProxy, nil, nil)
	a1 := topic("acme", "dev-1")

	// Warm the device cache while PostgreSQL is reachable.
	resp := svc.HandleBatch(ctx, tempwatch.BatchRequest{Messages: []tempwatch.Message{
		msg("warm", a1, fmt.Sprintf(`{"value":1,"ts":%q}`, ts(e.now.Add(-time.Hour))), e.now)}})
	require.Equal(t, 1, resp.Accepted)

	proxy.Cut()
	var msgs []tempwatch.Message
	var ids []string
	for i := range 5 {
		id := fmt.Sprintf("m%d", i)
		ids = append(ids, id)
		msgs = append(msgs, msg(id, a1, fmt.Sprintf(`{"value":%d,"ts":%q}`, i, ts(e.now.Add(-time.Duration(i+1)*time.Minute))), e.now))
	}
	// An uncached device needs PostgreSQL too; a malformed payload does not.
	ids = append(ids, "uncached")
	msgs = append(msgs, msg("uncached", topic("globex", "dev-1"), `{"value":3}`, e.now),
		msg("malformed", a1, `not json`, e.now))

	start := time.Now()
	resp = svc.HandleBatch(ctx, tempwatch.BatchRequest{Messages: msgs})
	assert.Less(t, time.Since(start), 10*time.Second, "a down database must fail fast")
	assert.Equal(t, 0, resp.Accepted, "nothing may be reported stored")
	assert.Equal(t, 0, resp.Duplicates)
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	assert.ElementsMatch(t, ids, failed)
	assert.Equal(t, []tempwatch.Rejection{{ID: "malformed", Reason: "payload is not JSON"}}, resp.Rejections)

	// Nothing of the failed batch reached PostgreSQL or the raw payloads (the
	// uncached device failed the batch before the write), and the retry
	// archives each payload once.
	assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM readings`))
	e.assertPayloads(t, 1)

	// The retry, once PostgreSQL is back, stores each exactly once.
	retry := e.service(nil, nil, nil).HandleBatch(ctx, tempwatch.BatchRequest{Messages: msgs[:6]})
	assert.Equal(t, 6, retry.Accepted)
	assert.Empty(t, retry.BatchItemFailures)
	assert.Equal(t, 7, e.count(t, `SELECT count(*) FROM readings`))
	e.assertPayloads(t, 7)
	assert.Equal(t, 0, e.rollupMismatches(t))
}

// TestHandleBatchMongoDown checks the service without an outbox: readings
// are written, but a message whose raw payload could not be archived is
// retried; the retry counts it a duplicate and archives it, linked to its
// reading. (With an outbox: TestHandleBatchMongoOutage.)
func TestHandleBatchMongoDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	down, err := mongodrv.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1/").
		SetServerSelectionTimeout(300 * time.Millisecond).SetConnectTimeout(300 * time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = down.Disconnect(context.Background()) })
	latest := &fakeLatest{}
	svc := e.service(nil, mongo.NewPayloadStore(down.Database("x")), latest)
	a1 := topic("acme", "dev-1")
	msgs := []tempwatch.Message{
		msg("a", a1, fmt.Sprintf(`{"value":1,"ts":%q}`, ts(e.now.Add(-2*time.Minute))), e.now),
		msg("b", a1, fmt.Sprintf(`{"value":2,"ts":%q}`, ts(e.now.Add(-time.Minute))), e.now),
		msg("bad", a1, `{"value":1000}`, e.now),
	}
	resp := svc.HandleBatch(ctx, tempwatch.BatchRequest{Messages: msgs})
	assert.Equal(t, 0, resp.Accepted+resp.Duplicates+resp.Rejected)
	assert.Len(t, resp.BatchItemFailures, 3)
	assert.Equal(t, 2, e.count(t, `SELECT count(*) FROM readings`), "readings are the truth and are kept")
	assert.Len(t, latest.offered, 1, "stored readings still reach the latest cache")

	retry := e.service(nil, nil, nil).HandleBatch(ctx, tempwatch.BatchRequest{Messages: msgs})
	assert.Equal(t, 0, retry.Accepted)
	assert.Equal(t, 2, retry.Duplicates)
	assert.Equal(t, 1, retry.Rejected)
	assert.Empty(t, retry.BatchItemFailures)
	assert.Equal(t, 2, e.count(t, `SELECT count(*) FROM readings`))
	var sensor string
	var at time.Time
	require.NoError(t, e.db.QueryRow(ctx, `SELECT sensor_id, measured_at FROM readings WHERE value = 2`).Scan(&sensor, &at))
	p, err := mongo.NewPayloadStore(e.mdb).FindPayload(ctx, sensor, at)
	require.NoError(t, err, "the retry archived the payload, linked to its reading")
	assert.Equal(t, msgs[1].Payload, p.Raw)
	e.assertPayloads(t, 2)
	assert.Equal(t, 1, e.mongoCount(t, mongo.DeadLettersCollection, nil))
}

// proxiedPool returns a second pool on the env's schema, through a proxy
// the test can cut.
func (e *testEnv) proxiedPool(t *testing.T) (*pgxpool.Pool, *faultproxy.Proxy) {
	t.Helper()
	return pgtest.MustProxiedDB(t, e.db)
}
