package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tempwatch/tempwatch/shared/faultproxy"
	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/mongo/mongotest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// countingArchive passes calls to next and counts them; writeThenFail makes
// the next raw-payload call store and then report a failure, as a timeout
// that fires after the server committed does.
type countingArchive struct {
	next          tempwatch.PayloadArchive
	mu            sync.Mutex
	rawCalls      int
	writeThenFail bool
}

func (c *countingArchive) InsertRawPayloads(ctx context.Context, ps []tempwatch.RawPayload) error {
	c.mu.Lock()
	c.rawCalls++
	fail := c.writeThenFail
	c.writeThenFail = false
	c.mu.Unlock()
	if err := c.next.InsertRawPayloads(ctx, ps); err != nil {
		return err
	}
	if fail {
		return errors.New("timed out after the write")
	}
	return nil
}

func (c *countingArchive) InsertDeadLetters(ctx context.Context, ds []tempwatch.DeadLetter) error {
	return c.next.InsertDeadLetters(ctx, ds)
}

func (c *countingArchive) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rawCalls
}

// syncBuffer is a log sink the services write to from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proxiedMongo returns the env's MongoDB database through a proxy the test
// can cut, on a client that gives up on a missing server quickly.
func (e *testEnv) proxiedMongo(t *testing.T) (*mongodrv.Database, *faultproxy.Proxy) {
	t.Helper()
	u, err := url.Parse(mongotest.URL(t))
	require.NoError(t, err)
	proxy := faultproxy.MustStart(t, u.Host)
	c, err := mongodrv.Connect(options.Client().ApplyURI("mongodb://" + proxy.Addr() + "/").
		SetServerSelectionTimeout(300 * time.Millisecond).SetConnectTimeout(300 * time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(e.mdb.Name()), proxy
}

func (e *testEnv) pending(t *testing.T) tempwatch.OutboxPending {
	t.Helper()
	p, err := postgres.NewArchiveOutbox(e.db).Pending(context.Background())
	require.NoError(t, err)
	return p
}

// TestHandleBatchMongoOutage: while MongoDB is down, readings still reach
// PostgreSQL and the latest cache and the batch is answered as stored; the
// raw payloads and dead letters wait in the PostgreSQL outbox and reach
// MongoDB, each once, when an instance drains it after MongoDB is back.
func TestHandleBatchMongoOutage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logs := &syncBuffer{}
	e.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx := context.Background()
	mdb, proxy := e.proxiedMongo(t)
	archive := &countingArchive{next: mongo.NewPayloadStore(mdb)}
	latest := &fakeLatest{}
	// A drain is due on an instance's first batch only: the test decides
	// which instance drains when.
	cfg := ingest.Config{Outbox: postgres.NewArchiveOutbox(e.db), ArchiveTimeout: time.Second,
		DrainInterval: time.Hour, DrainBudget: 30 * time.Second}
	first := e.serviceWith(cfg, nil, archive, latest)
	a1 := topic("acme", "dev-1")
	n := 0
	batch := func(good int, extra ...tempwatch.Message) tempwatch.BatchRequest {
		var msgs []tempwatch.Message
		for range good {
			n++
			msgs = append(msgs, msg(fmt.Sprint("m", n), a1, fmt.Sprintf(`{"value":%d,"ts":%q}`, n%40, ts(e.now.Add(-time.Duration(n)*time.Second))), e.now))
		}
		return tempwatch.BatchRequest{Messages: append(msgs, extra...)}
	}

	resp := first.HandleBatch(ctx, batch(3))
	require.Equal(t, 3, resp.Accepted)
	e.assertPayloads(t, 3)

	proxy.Cut()
	start := time.Now()
	resp = first.HandleBatch(ctx, batch(3, msg("bad", a1, `{"value":1000}`, e.now)))
	assert.Less(t, time.Since(start), 5*time.Second, "the archive write is bounded")
	assert.Equal(t, 3, resp.Accepted, "answered as stored: the bridge acks")
	assert.Equal(t, []string{"bad"}, rejectedIDs(resp))
	assert.Empty(t, resp.BatchItemFailures)
	assert.Equal(t, 6, e.count(t, `SELECT count(*) FROM readings`))
	assert.Len(t, latest.offered, 2, "each batch's newest reading reached the latest cache")
	assert.Equal(t, tempwatch.OutboxPending{Calls: 2, Payloads: 3, DeadLetters: 1}, e.pending(t))
	assert.Contains(t, logs.String(), "MongoDB archive unavailable")

	calls := archive.calls()
	resp = first.HandleBatch(ctx, batch(2))
	assert.Equal(t, 2, resp.Accepted)
	assert.Equal(t, calls, archive.calls(), "once down, the archive is not asked again until a drain gets through")
	assert.Equal(t, tempwatch.OutboxPending{Calls: 3, Payloads: 5, DeadLetters: 1}, e.pending(t))
	e.assertPayloads(t, 3)

	proxy.Restore()
	require.Eventually(t, func() bool { return mdb.Client().Ping(ctx, nil) == nil }, 10*time.Second, 20*time.Millisecond,
		"the driver reconnects through the restored proxy")
	// Another instance's first batch drains the outbox alongside its own
	// work; the first instance still sends to the outbox until its next
	// drain, and what it stashes then is drained later.
	second := e.serviceWith(cfg, nil, archive, latest)
	resp = second.HandleBatch(ctx, batch(2))
	assert.Equal(t, 2, resp.Accepted)
	assert.Equal(t, tempwatch.OutboxPending{}, e.pending(t))
	e.assertPayloads(t, 10)
	assert.Equal(t, 1, e.mongoCount(t, mongo.DeadLettersCollection, nil))
	assert.Contains(t, logs.String(), "moved archive calls from the PostgreSQL outbox into MongoDB")
	assert.Equal(t, 10, e.count(t, `SELECT count(*) FROM readings`))

	// MongoDB stored the payloads but the answer was lost: they go to the
	// outbox too, and draining them again adds nothing.
	archive.writeThenFail = true
	resp = second.HandleBatch(ctx, batch(2))
	assert.Equal(t, 2, resp.Accepted)
	assert.Equal(t, 1, e.pending(t).Calls)
	e.assertPayloads(t, 12)
	third := e.serviceWith(cfg, nil, archive, latest)
	resp = third.HandleBatch(ctx, batch(1))
	assert.Equal(t, 1, resp.Accepted)
	assert.Equal(t, tempwatch.OutboxPending{}, e.pending(t))
	e.assertPayloads(t, 13)
}

// TestHandleBatchMongoAndOutboxDown: when neither MongoDB nor the outbox
// takes a batch's raw payloads, its messages are retried (their readings
// are stored all the same), and the retry archives them.
func TestHandleBatchMongoAndOutboxDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	mdb, mongoProxy := e.proxiedMongo(t)
	outboxDB, pgProxy := e.proxiedPool(t)
	cfg := ingest.Config{Outbox: postgres.NewArchiveOutbox(outboxDB), ArchiveTimeout: time.Second}
	svc := e.serviceWith(cfg, nil, mongo.NewPayloadStore(mdb), nil)
	a1 := topic("acme", "dev-1")
	msgs := []tempwatch.Message{
		msg("a", a1, fmt.Sprintf(`{"value":1,"ts":%q}`, ts(e.now.Add(-2*time.Minute))), e.now),
		msg("b", a1, fmt.Sprintf(`{"value":2,"ts":%q}`, ts(e.now.Add(-time.Minute))), e.now),
		msg("bad", a1, `{"value":1000}`, e.now),
	}
	mongoProxy.Cut()
	pgProxy.Cut()
	resp := svc.HandleBatch(ctx, tempwatch.BatchRequest{Messages: msgs})
	assert.Equal(t, 0, resp.Accepted+resp.Duplicates+resp.Rejected)
	assert.Len(t, resp.BatchItemFailures, 3)
	assert.Equal(t, 2, e.count(t, `SELECT count(*) FROM readings`), "readings are the truth and are kept")

	retry := e.service(nil, nil, nil).HandleBatch(ctx, tempwatch.BatchRequest{Messages: msgs})
	assert.Equal(t, 2, retry.Duplicates)
	assert.Equal(t, 1, retry.Rejected)
	assert.Empty(t, retry.BatchItemFailures)
	e.assertPayloads(t, 2)
	assert.Equal(t, 1, e.mongoCount(t, mongo.DeadLettersCollection, nil))
	assert.Equal(t, tempwatch.OutboxPending{}, e.pending(t))
}

// TestArchiveOutageRecovery: one instance, on its own, finds MongoDB back
// (its drains ping it first) and drains what waits, while batches keep
// coming; each payload ends in MongoDB once.
func TestArchiveOutageRecovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	mdb, proxy := e.proxiedMongo(t)
	cfg := ingest.Config{Outbox: postgres.NewArchiveOutbox(e.db), ArchiveTimeout: time.Second,
		DrainInterval: 20 * time.Millisecond, DrainBudget: 5 * time.Second}
	svc := e.serviceWith(cfg, nil, mongo.NewPayloadStore(mdb), nil)
	n := 0
	send := func() bool { // Eventually polls from another goroutine: assert, not require
		n++
		resp := svc.HandleBatch(ctx, tempwatch.BatchRequest{Messages: []tempwatch.Message{
			msg(fmt.Sprint(n), topic("acme", "dev-1"), fmt.Sprintf(`{"value":1,"ts":%q}`, ts(e.now.Add(-time.Duration(n)*time.Second))), e.now),
			msg(fmt.Sprint("bad", n), topic("acme", "dev-1"), `{"value":`, e.now),
		}})
		return assert.Equal(t, 1, resp.Accepted) && assert.Empty(t, resp.BatchItemFailures)
	}
	require.True(t, send())
	proxy.Cut()
	for range 5 {
		require.True(t, send())
	}
	assert.Equal(t, 10, e.pending(t).Calls, "five batches of a payload and a dead letter wait")
	proxy.Restore()
	require.Eventually(t, func() bool {
		if !send() {
			return false
		}
		p, err := postgres.NewArchiveOutbox(e.db).Pending(ctx)
		return assert.NoError(t, err) && p.Calls == 0
	}, 20*time.Second, time.Millisecond, "batches drain the outbox once MongoDB is back")
	e.assertPayloads(t, n)
	assert.Equal(t, n, e.mongoCount(t, mongo.DeadLettersCollection, nil))
}

// TestHTTPIngestMongoDown: a device posting over HTTP while MongoDB is down
// gets its readings stored (200, not a 503 to send again); their raw
// payloads wait in the outbox.
func TestHTTPIngestMongoDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mdb, proxy := e.proxiedMongo(t)
	proxy.Cut()
	cfg := ingest.Config{Outbox: postgres.NewArchiveOutbox(e.db), ArchiveTimeout: time.Second}
	h := ingest.NewHandler(e.serviceWith(cfg, nil, mongo.NewPayloadStore(mdb), nil), quietLog())
	w := postReadings(t, h, e.acme1Key, fmt.Sprintf(`[{"value":1,"ts":%q},{"value":2,"ts":%q}]`,
		ts(e.now.Add(-2*time.Minute)), ts(e.now.Add(-time.Minute))))
	assert.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, 2, e.count(t, `SELECT count(*) FROM readings`))
	assert.Equal(t, tempwatch.OutboxPending{Calls: 1, Payloads: 2}, e.pending(t))
}
