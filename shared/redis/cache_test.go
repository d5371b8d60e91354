package redis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// countingStore is the real PostgreSQL store, counting its calls and
// optionally pausing after the query (a slow reader).
type countingStore struct {
	real  *postgres.ReadingStore
	calls atomic.Int64
	pause func()
}

func (s *countingStore) LatestReadings(ctx context.Context, ids []string) (map[string]tempwatch.Reading, error) {
	s.calls.Add(1)
	rs, err := s.real.LatestReadings(ctx, ids)
	if s.pause != nil {
		s.pause()
	}
	return rs, err
}

type fixture struct {
	db     *pgxpool.Pool
	sensor string
	store  *countingStore
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := pgtest.MustDB(t)
	c := pgtest.MustClient(t, db, "acme", "UTC")
	return &fixture{db: db, sensor: pgtest.MustSensor(t, db, c, "d1", "k1"), store: &countingStore{real: postgres.NewReadingStore(db)}}
}

// cache returns a read cache over the fixture's store on a Redis prefix of
// the test's own, with its Client and the raw connection.
func (f *fixture) cache(t *testing.T) (*redis.Cache, *redis.Client, *goredis.Client) {
	t.Helper()
	rdb, prefix := redistest.MustClient(t)
	rc := redis.New(rdb, redis.Options{Prefix: prefix})
	return redis.NewCache(rc, redis.CacheOptions{Store: f.store}), rc, rdb
}

// write stores a reading as ingest does and returns it.
func (f *fixture) write(t *testing.T, v float64, at time.Time) tempwatch.Reading {
	t.Helper()
	res, err := postgres.NewReadingStore(f.db).WriteReadings(context.Background(),
		[]tempwatch.Reading{{SensorID: f.sensor, Value: v, MeasuredAt: at}})
	require.NoError(t, err)
	return tempwatch.Reading{ID: res[0].ReadingID, SensorID: f.sensor, Value: v, MeasuredAt: at, CreatedAt: res[0].CreatedAt}
}

func (f *fixture) deleteReading(t *testing.T, id int64) {
	t.Helper()
	_, err := f.db.Exec(context.Background(), `DELETE FROM readings WHERE id = $1`, id)
	require.NoError(t, err)
}

func latestValue(t *testing.T, c *redis.Cache, sensor string) float64 {
	t.Helper()
	r, err := c.Latest(context.Background(), sensor)
	require.NoError(t, err)
	return r.Value
}

func TestLatestFollowsWrites(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, rc, _ := f.cache(t)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Microsecond)

	_, err := c.Latest(ctx, f.sensor)
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "no readings yet")

	a := f.write(t, 1, t0)
	c.OfferLatest(ctx, a)
	assert.Equal(t, 1.0, latestValue(t, c, f.sensor))
	calls := f.store.calls.Load()
	assert.Equal(t, 1.0, latestValue(t, c, f.sensor))
	assert.Equal(t, calls, f.store.calls.Load(), "second read is a cache hit")

	b := f.write(t, 2, t0.Add(time.Minute))
	c.OfferLatest(ctx, b)
	assert.Equal(t, 2.0, latestValue(t, c, f.sensor), "newer reading replaces")

	late := f.write(t, 3, t0.Add(-time.Minute))
	c.OfferLatest(ctx, late)
	c.InvalidateAggregates(ctx, f.sensor)
	calls = f.store.calls.Load()
	assert.Equal(t, 2.0, latestValue(t, c, f.sensor), "late reading never replaces a newer one")
	assert.Equal(t, calls, f.store.calls.Load(), "ingest's invalidation keeps the offered latest")

	f.deleteReading(t, b.ID)
	c.InvalidateSensor(ctx, f.sensor)
	assert.Equal(t, 1.0, latestValue(t, c, f.sensor), "after a delete the next read sees the database")
	calls = f.store.calls.Load()
	assert.Equal(t, 1.0, latestValue(t, c, f.sensor))
	assert.Equal(t, calls, f.store.calls.Load(), "the reader filled Redis")
	assert.Empty(t, rc.Degraded())

	// An insert offered while the entry is marked gone must not be lost.
	c.InvalidateSensor(ctx, f.sensor)
	d := f.write(t, 4, t0.Add(2*time.Minute))
	c.OfferLatest(ctx, d)
	assert.Equal(t, 4.0, latestValue(t, c, f.sensor))
}

// TestOfferLatestMany: one call offers several sensors' readings in one
// round trip, also after Redis lost its scripts (a restart), and each
// sensor keeps its newest.
func TestOfferLatestMany(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _, rdb := f.cache(t)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	other := pgtest.MustSensor(t, f.db, pgtest.MustClient(t, f.db, "globex", "UTC"), "d2", "k2")

	newest, older := f.write(t, 1, t0), f.write(t, 2, t0.Add(-time.Minute))
	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	c.OfferLatest(ctx, newest, older,
		tempwatch.Reading{ID: 99, SensorID: other, Value: 7, MeasuredAt: t0, CreatedAt: t0})
	assert.Equal(t, 1.0, latestValue(t, c, f.sensor))
	assert.Equal(t, 7.0, latestValue(t, c, other))
	assert.Zero(t, f.store.calls.Load(), "both were cache hits")
}

// TestSlowReaderCannotPutOldValueBack: a reader that queried PostgreSQL
// before a write and fills Redis after it must not leave the old value.
func TestSlowReaderCannotPutOldValueBack(t *testing.T) {
	tests := []struct {
		name  string
		write func(t *testing.T, f *fixture, c *redis.Cache, old tempwatch.Reading) float64 // returns the value to expect
	}{
		{"delete of the latest", func(t *testing.T, f *fixture, c *redis.Cache, old tempwatch.Reading) float64 {
			f.deleteReading(t, old.ID)
			c.InvalidateSensor(context.Background(), f.sensor)
			return 1
		}},
		{"newer reading", func(t *testing.T, f *fixture, c *redis.Cache, old tempwatch.Reading) float64 {
			r := f.write(t, 3, old.MeasuredAt.Add(time.Minute))
			c.OfferLatest(context.Background(), r)
			return 3
		}},
		{"newer reading after an invalidation", func(t *testing.T, f *fixture, c *redis.Cache, old tempwatch.Reading) float64 {
			c.InvalidateSensor(context.Background(), f.sensor)
			r := f.write(t, 3, old.MeasuredAt.Add(time.Minute))
			c.OfferLatest(context.Background(), r)
			return 3
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			c, _, _ := f.cache(t)
			t0 := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
			f.write(t, 1, t0)
			old := f.write(t, 2, t0.Add(time.Minute))

			loaded, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			f.store.pause = func() { once.Do(func() { close(loaded); <-release }) }
			done := make(chan float64)
			go func() {
				r, err := c.Latest(context.Background(), f.sensor)
				assert.NoError(t, err)
				done <- r.Value
			}()
			<-loaded
			want := tt.write(t, f, c, old)
			close(release)
			assert.Equal(t, 2.0, <-done, "the slow reader answers what it read")
			assert.Equal(t, want, latestValue(t, c, f.sensor), "the next read sees the write")
		})
	}
}

func TestConcurrentMissesShareOneQuery(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rdb, prefix := redistest.MustClient(t)
	// A generous timeout: this test is about sharing, not about a slow Redis
	// on a loaded machine (a timed-out read would fall back to a load).
	rc := redis.New(rdb, redis.Options{Prefix: prefix, Timeout: 5 * time.Second})
	c := redis.NewCache(rc, redis.CacheOptions{Store: f.store})
	f.write(t, 7, time.Now().Add(-time.Minute))

	// The load stays open until every caller has asked: without the shared
	// flight each would miss and load; a caller that joins after it ended
	// finds the result in Redis (it is written inside the flight).
	const callers = 1000
	var loads, asking atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	sets := make([]*metrics.Set, callers) // each caller's invocation
	for i := range callers {
		sets[i] = metrics.NewSet()
		ctx := metrics.WithSet(context.Background(), sets[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			v, err := c.Latest(ctx, f.sensor)
			assert.NoError(t, err)
			assert.Equal(t, 7.0, v.Value)
			asking.Add(1)
			b, err := c.Aggregate(ctx, "test", "p", []string{f.sensor}, func(context.Context) ([]byte, error) {
				loads.Add(1)
				for asking.Load() < callers {
					runtime.Gosched()
				}
				return []byte(`"x"`), nil
			})
			assert.NoError(t, err)
			assert.Equal(t, `"x"`, string(b))
		}()
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int64(1), f.store.calls.Load(), "latest-reading queries for 1,000 concurrent misses")
	assert.Equal(t, int64(1), loads.Load(), "aggregate loads for 1,000 concurrent misses")
	assert.Empty(t, rc.Degraded())
	// Every caller asked the cache once, whether it led its flight or
	// shared another's: each invocation counts its own lookup.
	for _, cache := range []string{"latest", "aggregate"} {
		var lookups float64
		for _, set := range sets {
			lookups += cacheCount(set, cache, "hit") + cacheCount(set, cache, "miss")
		}
		assert.Equal(t, float64(callers), lookups, "%s lookups counted", cache)
	}
}

func TestAggregateKeyFollowsVersions(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.MustClient(t)
	c := redis.NewCache(redis.New(rdb, redis.Options{Prefix: prefix}), redis.CacheOptions{})
	ctx := context.Background()
	n := 0
	load := func(context.Context) ([]byte, error) { n++; return []byte(strconv.Itoa(n)), nil }
	get := func() string {
		b, err := c.Aggregate(ctx, "k", "p", []string{"s1", "s2"}, load)
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "1", get())
	assert.Equal(t, "1", get(), "cached")
	c.InvalidateSensor(ctx, "s2")
	assert.Equal(t, "2", get(), "an invalidation of any sensor read gives a new key")
	c.InvalidateSensor(ctx, "s3")
	assert.Equal(t, "2", get(), "other sensors do not matter")
	c.InvalidateAggregates(ctx, "s1")
	assert.Equal(t, "3", get(), "InvalidateAggregates changes the key too")
}

func TestRedisStoppedMidTest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	srv := redistest.MustServer(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	rc := redis.New(rdb, redis.Options{Backoff: 50 * time.Millisecond})
	c := redis.NewCache(rc, redis.CacheOptions{Store: f.store})
	set := metrics.NewSet()
	ctx := metrics.WithSet(context.Background(), set)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	agg := func(v string) func(context.Context) ([]byte, error) {
		return func(context.Context) ([]byte, error) { return []byte(v), nil }
	}

	c.OfferLatest(ctx, f.write(t, 1, t0))
	assert.Equal(t, 1.0, latestValue(t, c, f.sensor))
	b, err := c.Aggregate(ctx, "k", "p", []string{f.sensor}, agg("one"))
	require.NoError(t, err)
	assert.Equal(t, "one", string(b))
	assert.Empty(t, rc.Degraded())

	srv.Kill()

	c.OfferLatest(ctx, f.write(t, 2, t0.Add(time.Minute)))
	assert.Equal(t, map[string]int64{"latest.offer": 1}, rc.Degraded(), "the lost offer is counted")
	for i := range 3 {
		start := time.Now()
		r, err := c.Latest(ctx, f.sensor)
		require.NoError(t, err)
		assert.Equal(t, 2.0, r.Value, "read %d answers from PostgreSQL", i)
		assert.Less(t, time.Since(start), time.Second, "a read does not hang on the dead Redis")
		b, err := c.Aggregate(ctx, "k", "p", []string{f.sensor}, agg("fresh"))
		require.NoError(t, err)
		assert.Equal(t, "fresh", string(b))
	}
	assert.Equal(t, map[string]int64{"latest.offer": 1, "latest.get": 3, "aggregate.get": 3}, rc.Degraded(),
		"each read is counted once, whether it failed or skipped Redis")
	assert.Equal(t, 3.0, degradedCount(set, "latest.get"), "the invocation's metric")
	assert.Equal(t, 3.0, cacheCount(set, "latest", "degraded"), "the reads answered without Redis")
	assert.Equal(t, 3.0, cacheCount(set, "aggregate", "degraded"))
}

// cacheCount is tempwatch_cache_requests_total of cache and result in set.
func cacheCount(set *metrics.Set, cache, result string) float64 {
	for _, s := range set.Snapshot() {
		if s.Def == metrics.CacheRequests && s.Labels[1] == cache && s.Labels[2] == result {
			return s.Sum
		}
	}
	return 0
}

// degradedCount is tempwatch_redis_degraded_total of op in set.
func degradedCount(set *metrics.Set, op string) float64 {
	for _, s := range set.Snapshot() {
		if s.Def == metrics.RedisDegraded && s.Labels[1] == op {
			return s.Sum
		}
	}
	return 0
}

func TestStartsWithoutRedis(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	for _, rc := range []*redis.Client{redis.New(rdb, redis.Options{}), redis.New(nil, redis.Options{})} {
		c := redis.NewCache(rc, redis.CacheOptions{Store: f.store})
		f.write(t, 5, time.Now().Add(-time.Duration(f.store.calls.Load()+1)*time.Minute).Truncate(time.Microsecond))
		m, err := c.LatestReadings(context.Background(), []string{f.sensor, "not-a-uuid"})
		require.NoError(t, err)
		assert.Equal(t, 5.0, m[f.sensor].Value)
		assert.Len(t, m, 1)
		assert.Equal(t, map[string]int64{"latest.get": 1}, rc.Degraded())
	}
}

// A failing Redis is logged once per operation and backoff window, and
// every degraded operation is counted in the invocation's metrics (which
// shared/lambdahttp publishes as EMF): no running total in the log.
func TestRedisFailureIsLoggedOnceAndCounted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	var logs bytes.Buffer
	rc := redis.New(rdb, redis.Options{Backoff: time.Hour, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	c := redis.NewCache(rc, redis.CacheOptions{Store: f.store})
	f.write(t, 7, time.Now().Add(-time.Minute).Truncate(time.Microsecond))
	set := metrics.NewSet()
	ctx := metrics.WithSet(context.Background(), set)
	for range 3 {
		_, err := c.LatestReadings(ctx, []string{f.sensor})
		require.NoError(t, err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 1, "one record per backoff window, not one per read: %s", logs.String())
	var rec struct {
		Msg string
		Op  string
		AWS json.RawMessage `json:"_aws"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec))
	assert.Equal(t, "redis unavailable", rec.Msg)
	assert.Equal(t, "latest.get", rec.Op)
	assert.Nil(t, rec.AWS, "the log line carries no metric")
	assert.Equal(t, map[string]int64{"latest.get": 3}, rc.Degraded())
	assert.Equal(t, 3.0, degradedCount(set, "latest.get"))
}

// TestLatestNotStaleAfterPause: an offer lost while Redis is paused
// (SIGSTOP) leaves another process's reads stale no longer than the
// writer's next write after Redis resumes (it repairs what it lost), and,
// were there none, than LatestTTL.
func TestLatestNotStaleAfterPause(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other := pgtest.MustSensor(t, f.db, pgtest.MustClient(t, f.db, "other", "UTC"), "d2", "k2")
	srv := redistest.MustServer(t)
	const ttl = 2 * time.Second
	open := func() *redis.Cache {
		rc, err := redis.Open(srv.URL(), redis.Options{Timeout: 200 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { _ = rc.Close() })
		return redis.NewCache(rc, redis.CacheOptions{Store: f.store, LatestTTL: ttl})
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	ctx := context.Background()

	for _, writesAgain := range []bool{true, false} {
		t.Run(fmt.Sprintf("writes again %v", writesAgain), func(t *testing.T) {
			reader := open() // the readings function
			t0 = t0.Add(time.Minute)
			open().OfferLatest(ctx, f.write(t, 1, t0))
			assert.Equal(t, 1.0, latestValue(t, reader, f.sensor))

			// An ingest instance that connects while Redis hangs: its
			// connection's handshake times out, so the offer is never sent
			// (one sent on an open connection would run on resume).
			srv.Pause()
			writer := open()
			writer.OfferLatest(ctx, f.write(t, 2, t0.Add(time.Second)))
			srv.Resume()
			resumed := time.Now()
			if writesAgain {
				writer.OfferLatest(ctx, tempwatch.Reading{SensorID: other, MeasuredAt: t0})
				assert.Equal(t, 2.0, latestValue(t, reader, f.sensor), "repaired by the writer's next write")
				return
			}
			require.Eventually(t, func() bool { return latestValue(t, reader, f.sensor) == 2.0 },
				ttl+2*time.Second, 20*time.Millisecond, "the stale entry expires")
			assert.Less(t, time.Since(resumed), ttl+time.Second)
		})
	}
}
