package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/mongo/mongotest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// testEnv is one test's real PostgreSQL schema, Redis prefix and MongoDB
// database, with two clients: acme (dev-1 in °C, range -40..85; dev-2
// reporting °F) and globex (its own dev-1).
type testEnv struct {
	db       *pgxpool.Pool
	rdb      *goredis.Client // rc's connection, to look at its keys
	prefix   string
	rc       *redis.Client
	mdb      *mongodrv.Database
	now      time.Time
	acme1    string // sensor ids
	acme2    string
	globex1  string
	acme1Key string
	log      *slog.Logger // the services' log; nil discards it
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	e := &testEnv{db: pgtest.MustDB(t), mdb: mongotest.MustDatabase(t), now: time.Now().UTC().Truncate(time.Millisecond)}
	e.rdb, e.prefix = redistest.MustClient(t)
	e.rc = redis.New(e.rdb, redis.Options{Prefix: e.prefix})
	acme := pgtest.MustClient(t, e.db, "acme", "")
	globex := pgtest.MustClient(t, e.db, "globex", "Asia/Kolkata")
	e.acme1Key = "key-acme-1"
	e.acme1 = pgtest.MustSensor(t, e.db, acme, "dev-1", e.acme1Key)
	e.acme2 = pgtest.MustSensor(t, e.db, acme, "dev-2", "key-acme-2")
	e.globex1 = pgtest.MustSensor(t, e.db, globex, "dev-1", "key-globex-1")
	ctx := context.Background()
	_, err := e.db.Exec(ctx, `UPDATE sensors SET min_value = -40, max_value = 85 WHERE id = $1`, e.acme1)
	require.NoError(t, err)
	_, err = e.db.Exec(ctx, `UPDATE sensors SET unit = 'F' WHERE id = $1`, e.acme2)
	require.NoError(t, err)
	return e
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// service builds an ingest service on db (the env's pool unless given).
func (e *testEnv) service(db *pgxpool.Pool, archive tempwatch.PayloadArchive, latest ingest.LatestCache) *ingest.Service {
	return e.serviceWith(ingest.Config{}, db, archive, latest)
}

// serviceWith is service with cfg; its clock is the env's.
func (e *testEnv) serviceWith(cfg ingest.Config, db *pgxpool.Pool, archive tempwatch.PayloadArchive, latest ingest.LatestCache) *ingest.Service {
	if db == nil {
		db = e.db
	}
	if archive == nil {
		archive = mongo.NewPayloadStore(e.mdb)
	}
	if latest == nil {
		latest = redis.NewCache(e.rc, redis.CacheOptions{})
	}
	devices := ingest.NewDeviceCache(redis.NewDeviceStore(e.rc, postgres.NewDeviceStore(db)), ingest.DeviceCacheOptions{})
	cfg.Now = func() time.Time { return e.now }
	log := e.log
	if log == nil {
		log = quietLog()
	}
	return ingest.NewService(devices, postgres.NewReadingStore(db), archive, latest, log, cfg)
}

func (e *testEnv) count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, e.db.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func (e *testEnv) mongoCount(t testing.TB, coll string, filter bson.D) int {
	t.Helper()
	if filter == nil {
		filter = bson.D{}
	}
	n, err := e.mdb.Collection(coll).CountDocuments(context.Background(), filter)
	require.NoError(t, err)
	return int(n)
}

// assertPayloads checks that n readings have their raw payload archived,
// each once.
func (e *testEnv) assertPayloads(t testing.TB, n int) {
	t.Helper()
	distinct, stored, err := mongo.NewPayloadStore(e.mdb).CountPayloads(context.Background())
	require.NoError(t, err)
	assert.Equal(t, n, distinct, "readings with a raw payload")
	assert.Equal(t, n, stored, "raw payloads stored")
}

// rollupMismatches counts (sensor, bucket) rows where reading_rollups
// differs from aggregates computed from scratch over readings.
func (e *testEnv) rollupMismatches(t testing.TB) int {
	return e.count(t, `
		WITH truth AS (
			SELECT sensor_id, rollup_bucket(measured_at) AS bucket_start, count(*) AS count, sum(value) AS sum,
				min(value) AS min, max(value) AS max, min(measured_at) AS first_at, max(measured_at) AS last_at
			FROM readings GROUP BY 1, 2)
		SELECT count(*) FROM truth t FULL JOIN reading_rollups r USING (sensor_id, bucket_start)
		WHERE t.count IS DISTINCT FROM r.count OR abs(t.sum - r.sum) > 1e-9 OR r.sum IS NULL OR t.sum IS NULL
			OR t.min IS DISTINCT FROM r.min OR t.max IS DISTINCT FROM r.max
			OR t.first_at IS DISTINCT FROM r.first_at OR t.last_at IS DISTINCT FROM r.last_at`)
}

func msg(id, topic, payload string, at time.Time) tempwatch.Message {
	return tempwatch.Message{ID: id, Topic: topic, Payload: []byte(payload), ReceivedAt: at}
}

func topic(slug, dev string) string {
	return tempwatch.DeviceRef{ClientSlug: slug, DeviceID: dev}.Topic()
}

// fakeLatest records what ingest offers the latest cache.
type fakeLatest struct {
	mu          sync.Mutex
	offered     []tempwatch.Reading
	invalidated []string
}

func (f *fakeLatest) OfferLatest(_ context.Context, rs ...tempwatch.Reading) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offered = append(f.offered, rs...)
}

func (f *fakeLatest) InvalidateAggregates(_ context.Context, ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invalidated = append(f.invalidated, ids...)
}
