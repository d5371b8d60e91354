package e2e_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/e2e"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// world is a running harness with two clients of three sensors each.
type world struct {
	h       *e2e.Harness
	db      *pgxpool.Pool
	sensors map[string]string // client/device → sensor id
	keys    map[string]string // client/device (the MQTT username) → device key
	logs    *stack.LogBuffer
}

func mustWorld(t *testing.T) *world { return mustWorldWith(t, e2e.Options{}) }

// mustWorldWith starts the world with o's settings (Root, DatabaseURL and
// Logs are the world's own; MongoURL defaults to MONGODB_URL).
func mustWorldWith(t *testing.T, o e2e.Options) *world {
	t.Helper()
	dbURL := pgtest.MustMigratedURL(t) // the broker opens it before devstack's migrate step runs
	db, err := postgres.Open(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	w := &world{db: db, sensors: map[string]string{}, keys: map[string]string{}, logs: &stack.LogBuffer{}}
	for _, slug := range []string{"acme", "globex"} {
		clientID := pgtest.MustClient(t, db, slug, "Europe/Berlin")
		for i := 1; i <= 3; i++ {
			dev := fmt.Sprintf("dev-%d", i)
			w.keys[slug+"/"+dev] = tempwatch.DeviceKeyPrefix + "e2e-" + slug + "-" + dev
			w.sensors[slug+"/"+dev] = pgtest.MustSensor(t, db, clientID, dev, w.keys[slug+"/"+dev])
		}
	}
	o.Root, o.DatabaseURL, o.Logs = "../..", dbURL, w.logs
	if o.MongoURL == "" {
		o.MongoURL = os.Getenv("MONGODB_URL")
	}
	w.h, err = e2e.Start(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(w.h.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", w.logs.String())
		}
	})
	return w
}

// readings returns perSensor readings for every sensor, one second apart,
// ending a minute ago, with values that differ per sensor and reading.
func (w *world) readings(perSensor int, from int) []e2e.Reading {
	end := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Minute)
	var out []e2e.Reading
	for i := from; i < from+perSensor; i++ {
		for key := range w.sensors {
			slug, dev, _ := strings.Cut(key, "/")
			out = append(out, e2e.Reading{Client: slug, Device: dev, Value: math.Round((15+float64(i%40)*0.25+float64(len(key)))*100) / 100,
				At: end.Add(-time.Duration(10_000-i) * time.Second)})
		}
	}
	return out
}

func (w *world) waitRows(t *testing.T, want int, within time.Duration) {
	t.Helper()
	var n int
	require.Eventually(t, func() bool {
		require.NoError(t, w.db.QueryRow(context.Background(), `SELECT count(*) FROM readings`).Scan(&n))
		return n >= want
	}, within, 100*time.Millisecond, "rows stored: want %d", want)
	time.Sleep(500 * time.Millisecond) // anything more would be a duplicate
	require.NoError(t, w.db.QueryRow(context.Background(), `SELECT count(*) FROM readings`).Scan(&n))
	assert.Equal(t, want, n, "exactly one row per reading")
}

// assertStored checks every published reading is stored exactly once with
// its value, and that rollups and the latest-reading cache agree with them.
func (w *world) assertStored(t *testing.T, rs []e2e.Reading) {
	t.Helper()
	ctx := context.Background()
	type agg struct {
		n        int
		sum      float64
		min, max float64
		last     e2e.Reading
	}
	want := map[string]*agg{}
	for _, r := range rs {
		id := w.sensors[r.Client+"/"+r.Device]
		a := want[id]
		if a == nil {
			a = &agg{min: math.Inf(1), max: math.Inf(-1)}
			want[id] = a
		}
		a.n++
		a.sum += r.Value
		a.min, a.max = math.Min(a.min, r.Value), math.Max(a.max, r.Value)
		if r.At.After(a.last.At) {
			a.last = r
		}
		var v float64
		require.NoError(t, w.db.QueryRow(ctx, `SELECT value FROM readings WHERE sensor_id = $1 AND measured_at = $2`, id, r.At).Scan(&v),
			"reading %s/%s at %s", r.Client, r.Device, r.At)
		assert.Equal(t, r.Value, v)
	}

	rc, err := redis.Open("redis://127.0.0.1:6379/0", redis.Options{Prefix: w.h.RedisPrefix})
	require.NoError(t, err)
	defer rc.Close()
	// The latest reading as the readings route serves it: the function's
	// Redis entries, falling back to PostgreSQL. (The ingest function
	// currently invalidates the entry it just offered, so this reads through.)
	c := redis.NewCache(rc, redis.CacheOptions{Store: postgres.NewReadingStore(w.db)})
	for id, a := range want {
		var n int
		var sum, lo, hi float64
		require.NoError(t, w.db.QueryRow(ctx, `SELECT sum(count), sum(sum), min(min), max(max) FROM reading_rollups WHERE sensor_id = $1`, id).
			Scan(&n, &sum, &lo, &hi))
		assert.Equal(t, a.n, n, "rollup count of %s", id)
		assert.InDelta(t, a.sum, sum, 1e-6, "rollup sum of %s", id)
		assert.Equal(t, a.min, lo, "rollup min of %s", id)
		assert.Equal(t, a.max, hi, "rollup max of %s", id)

		latest, err := c.Latest(ctx, id)
		require.NoError(t, err, "latest of %s", id)
		assert.Equal(t, a.last.Value, latest.Value, "latest value of %s", id)
		assert.True(t, a.last.At.Equal(latest.MeasuredAt), "latest of %s at %s, want %s", id, latest.MeasuredAt, a.last.At)
	}

	mc, err := mongo.Open(ctx, w.h.Stack.MongoDBURL())
	require.NoError(t, err)
	defer func() { _ = mc.Disconnect(ctx) }()
	distinct, _, err := mongo.NewPayloadStore(mc.Database(w.h.MongoDB)).CountPayloads(ctx)
	require.NoError(t, err)
	assert.Equal(t, len(rs), distinct, "a raw payload for every reading")
}

func TestIngestEndToEnd(t *testing.T) {
	w := mustWorld(t)
	ctx := context.Background()
	b, err := w.h.StartBridge(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = b.Stop() }()
	pub, err := w.h.NewPublisher(w.keys)
	require.NoError(t, err)
	defer pub.Close()

	rs := w.readings(100, 0) // 600 readings, two clients
	require.NoError(t, pub.Publish(rs))
	// Redelivered or re-sent readings, and messages rejected for good, in
	// among the good ones.
	require.NoError(t, pub.Publish(rs[:60]))
	bad := [][2]string{
		{"tempwatch/acme/sensors/dev-1/readings", `{"value":`},
		{"tempwatch/acme/sensors/dev-1/readings", `{"value":9000}`},
		{"tempwatch/acme/sensors/dev-1/readings", `{"value":"warm"}`},
		{"tempwatch/globex/sensors/dev-2/readings", `{"value":20,"ts":"2099-01-01T00:00:00Z"}`},
	}
	require.NoError(t, pub.PublishRaw(bad))
	more := w.readings(10, 100)
	require.NoError(t, pub.Publish(more))
	rs = append(rs, more...)

	w.waitRows(t, len(rs), 60*time.Second)
	w.assertStored(t, rs)
	w.assertDeadLetters(t, len(bad))
	assert.Equal(t, float64(len(bad)), testutil.ToFloat64(b.Metrics().Rejected), "rejections acked and counted")
	assert.Equal(t, float64(len(rs)+60+len(bad)), testutil.ToFloat64(b.Metrics().Acked), "every message acked once")
}

func (w *world) assertDeadLetters(t *testing.T, want int) {
	t.Helper()
	ctx := context.Background()
	mc, err := mongo.Open(ctx, w.h.Stack.MongoDBURL())
	require.NoError(t, err)
	defer func() { _ = mc.Disconnect(ctx) }()
	var n int64
	require.Eventually(t, func() bool {
		n, err = mc.Database(w.h.MongoDB).Collection(mongo.DeadLettersCollection).CountDocuments(ctx, bson.D{})
		return err == nil && n >= int64(want)
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, int64(want), n, "one dead letter per rejected message")
}

// TestIngestSurvivesBridgeRestartAndDatabaseOutage restarts the bridge mid
// stream and cuts PostgreSQL away from the function for a while; afterwards
// every reading is stored exactly once.
func TestIngestSurvivesBridgeRestartAndDatabaseOutage(t *testing.T) {
	w := mustWorld(t)
	ctx := context.Background()
	b, err := w.h.StartBridge(ctx, map[string]string{"BATCH_SIZE": "100"})
	require.NoError(t, err)
	pub, err := w.h.NewPublisher(w.keys)
	require.NoError(t, err)
	defer pub.Close()

	rs := w.readings(300, 0) // 1800 readings
	chunk := len(rs) / 6
	publish := func(i int) { require.NoError(t, pub.Publish(rs[i*chunk:(i+1)*chunk])) }

	publish(0)
	publish(1)
	require.NoError(t, b.Stop()) // restart mid-stream
	publish(2)                   // while no bridge runs
	b, err = w.h.StartBridge(ctx, map[string]string{"BATCH_SIZE": "100"})
	require.NoError(t, err)
	defer func() { _ = b.Stop() }()

	w.h.Proxy.Cut() // the function loses PostgreSQL
	publish(3)
	publish(4)
	time.Sleep(3 * time.Second) // the bridge retries, acks nothing
	w.h.Proxy.Restore()
	publish(5)

	w.waitRows(t, len(rs), 90*time.Second)
	w.assertStored(t, rs)
	assert.Positive(t, testutil.ToFloat64(b.Metrics().Retries), "the outage made the bridge retry")
}

// TestIngestSurvivesBridgeCrash kills the bridge process (SIGKILL: no flush,
// no acks, no DISCONNECT) while batches are in flight, and starts it again
// with the same client id; every reading ends up stored exactly once.
// A SIGTERM then stops the second one gracefully.
func TestIngestSurvivesBridgeCrash(t *testing.T) {
	w := mustWorld(t)
	ctx := context.Background()
	bin, err := e2e.BuildBridge(ctx, "../..", t.TempDir())
	require.NoError(t, err)
	env := map[string]string{"BATCH_SIZE": "50", "MQTT_CLIENT_ID": "tempwatch-bridge-e2e-crash"}
	first, err := w.h.StartBridgeProcess(ctx, bin, env)
	require.NoError(t, err)
	pub, err := w.h.NewPublisher(w.keys)
	require.NoError(t, err)
	defer pub.Close()

	rs := w.readings(400, 0) // 2400 readings, published steadily
	published := make(chan error, 1)
	go func() {
		for i := 0; i < len(rs); i += 60 {
			if err := pub.Publish(rs[i:min(i+60, len(rs))]); err != nil {
				published <- err
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
		published <- nil
	}()
	var mid int
	require.Eventually(t, func() bool {
		require.NoError(t, w.db.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&mid))
		return mid >= 300
	}, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, first.Process.Kill()) // mid-stream
	_ = first.Wait()
	t.Logf("%d of %d readings stored when the bridge was killed", mid, len(rs))
	require.Less(t, mid, len(rs), "the crash happened mid-stream")

	// The second bridge takes the session over once publishing is done:
	// the embedded broker (mochi-mqtt v2.7.9) loses QoS 1 messages routed
	// during a takeover (inheritClientSession clones the old client's
	// inflight messages, then clears them, while publishes still reach the
	// old client until the new one replaces it in the client map): about
	// one run in two lost a 60-message publish under load. What was
	// published while the bridge was away waits in its session, as it
	// would at EMQX.
	require.NoError(t, <-published)
	second, err := w.h.StartBridgeProcess(ctx, bin, env)
	require.NoError(t, err)
	w.waitRows(t, len(rs), 60*time.Second)
	w.assertStored(t, rs)

	require.NoError(t, second.Process.Signal(syscall.SIGTERM))
	require.NoError(t, second.Wait(), "SIGTERM ends the bridge cleanly")
}
