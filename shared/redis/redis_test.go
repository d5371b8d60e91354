package redis_test

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// silentRedisURL returns the URL of a server that accepts connections and
// never answers: a Redis that hangs.
func silentRedisURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "redis://" + l.Addr().String() + "/0"
}

// epochCutoffs is a next store whose every user (or session) counts from
// the epoch: live.
var epochCutoffs = &mock.TokenCutoffs{TokensValidAfterFn: func(context.Context, string) (time.Time, error) {
	return time.UnixMicro(0), nil
}}

// noLatest is a database of record with no readings.
type noLatest struct{}

func (noLatest) LatestReadings(context.Context, []string) (map[string]tempwatch.Reading, error) {
	return map[string]tempwatch.Reading{}, nil
}

// TestTimeoutBoundsEveryCall: against a Redis that never answers, one
// operation of a client from Open waits Options.Timeout once, or less when
// the caller's deadline is sooner, and lookups and checks then skip Redis
// without waiting while writes still try.
func TestTimeoutBoundsEveryCall(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	rc, err := redis.Open(silentRedisURL(t), redis.Options{Timeout: timeout, Backoff: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()

	cutoffs := redis.NewTokenCutoffs(rc, epochCutoffs)
	start := time.Now()
	_, err = cutoffs.TokensValidAfter(ctx, "u1")
	elapsed := time.Since(start)
	require.NoError(t, err, "the cutoff comes from the next store")
	assert.GreaterOrEqual(t, elapsed, timeout)
	assert.Less(t, elapsed, timeout*9/5, "one bounded attempt (the fill after it skips Redis)")
	// A caller's own deadline, when sooner, ends the call too (the driver
	// would otherwise wait out its read timeout); a caller that gave up is
	// not counted as a Redis failure.
	short, cancel := context.WithTimeout(ctx, timeout/5)
	defer cancel()
	start = time.Now()
	cutoffs.PublishGone(short, "u1")
	assert.Less(t, time.Since(start), timeout/2, "the caller's deadline bounds the call")

	start = time.Now()
	m, err := redis.NewCache(rc, redis.CacheOptions{Store: noLatest{}}).LatestReadings(ctx, []string{"s1"})
	require.NoError(t, err, "a lookup answers as on a miss")
	assert.Empty(t, m)
	assert.Less(t, time.Since(start), timeout/2, "a lookup in the backoff does not wait for Redis")

	start = time.Now()
	assert.Zero(t, redis.NewLimiter(rc).Blocked(ctx, "acct", 1), "the limiter reports nobody blocked")
	assert.Less(t, time.Since(start), timeout/2, "a limiter check in the backoff does not wait for Redis")
	start = time.Now()
	redis.NewLimiter(rc).Reset(ctx, "acct")
	assert.GreaterOrEqual(t, time.Since(start), timeout, "a write still tries")
	degraded := rc.Degraded()
	// The short call's network deadline may fire a hair before its context
	// reports done, so whether it counts is a race; TestCallerGivingUpIsNoRedisFailure
	// checks a caller that gave up is not counted.
	delete(degraded, "cutoff.set")
	assert.Equal(t, map[string]int64{"cutoff.get": 1, "cutoff.fill": 1, "latest.get": 1, "limit.check": 1, "limit.reset": 1}, degraded)
}

// TestCallerGivingUpIsNoRedisFailure: a request whose context ended is not
// counted, and does not make the next lookups skip Redis.
func TestCallerGivingUpIsNoRedisFailure(t *testing.T) {
	t.Parallel()
	rc := redistest.MustAdapter(t)
	l := redis.NewLimiter(rc)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	l.Hit(gone, "acct", time.Minute)
	assert.Empty(t, rc.Degraded())

	ctx := context.Background()
	l.Hit(ctx, "acct", time.Minute)
	assert.Positive(t, l.Blocked(ctx, "acct", 1), "only the live hit counted")
	assert.Zero(t, l.Blocked(ctx, "acct", 2))
	c := redis.NewCache(rc, redis.CacheOptions{Store: noLatest{}})
	_, _ = c.LatestReadings(gone, []string{"s1"})
	_, err := c.LatestReadings(ctx, []string{"s1"})
	require.NoError(t, err)
	assert.Empty(t, rc.Degraded(), "no lookup was skipped")
}

func TestLimiterCountsFailuresInAWindow(t *testing.T) {
	t.Parallel()
	rc := redistest.MustAdapter(t)
	l := redis.NewLimiter(rc)
	ctx := context.Background()
	assert.Zero(t, l.Blocked(ctx, "acct", 3))
	for range 3 {
		l.Hit(ctx, "acct", time.Minute)
	}
	wait := l.Blocked(ctx, "acct", 3)
	assert.Greater(t, wait, 50*time.Second, "blocked until the window ends")
	assert.LessOrEqual(t, wait, time.Minute)
	assert.Zero(t, l.Blocked(ctx, "acct", 4), "under the limit")
	assert.Zero(t, l.Blocked(ctx, "other", 1), "keys count apart")
	l.Reset(ctx, "acct")
	assert.Zero(t, l.Blocked(ctx, "acct", 1), "a reset forgets the failures")
	assert.Empty(t, rc.Degraded())
}

// TestWithoutRedis: every family answers as on a miss and counts the
// operation.
func TestWithoutRedis(t *testing.T) {
	t.Parallel()
	rc, err := redis.Open(redistest.DeadURL(t), redis.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()
	require.Error(t, rc.Ping(ctx))

	l := redis.NewLimiter(rc)
	l.Hit(ctx, "acct", time.Minute)
	assert.Zero(t, l.Blocked(ctx, "acct", 1))
	l.Reset(ctx, "acct")
	redis.NewSessionStates(rc, epochCutoffs).PublishGone(ctx, "sess-1")
	c := redis.NewCache(rc, redis.CacheOptions{Store: noLatest{}})
	c.OfferLatest(ctx, tempwatch.Reading{SensorID: "s1", MeasuredAt: time.Now()})
	c.InvalidateSensor(ctx, "s1")
	c.InvalidateAggregates(ctx, "s1")
	redis.NewSensorCaches(rc, noLatest{}).ForgetDevices(ctx, "s1")
	assert.Equal(t, map[string]int64{
		"limit.hit": 1, "limit.check": 1, "limit.reset": 1, "session.set": 1,
		"latest.offer": 1, "sensor.invalidate": 1, "aggregates.invalidate": 1, "device.forget": 1,
	}, rc.Degraded())
}

// TestRefusedRedisCostsNoTimeout: once a Redis the client was connected to
// is killed, every operation, writes included and with no backoff to skip
// them, fails at once instead of waiting out Options.Timeout (the driver's
// dial retries and retry pauses did); when Redis is back, the client uses it
// again.
func TestRefusedRedisCostsNoTimeout(t *testing.T) {
	t.Parallel()
	srv := redistest.MustServer(t)
	const timeout = time.Second
	rc, err := redis.Open(srv.URL(), redis.Options{Timeout: timeout, Backoff: time.Nanosecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()
	l := redis.NewLimiter(rc)
	checks := redis.NewTokenChecks(redis.NewTokenCutoffs(rc, epochCutoffs), redis.NewSessionStates(rc, epochCutoffs))
	c := redis.NewCache(rc, redis.CacheOptions{Store: noLatest{}})
	for range 5 { // connections in the pool, to be broken by the kill
		require.NoError(t, rc.Ping(ctx))
	}
	srv.Kill()

	var slowest time.Duration
	for i := range 20 {
		start := time.Now()
		id := strconv.Itoa(i) // not in memory: every check asks Redis
		st := checks.CheckToken(ctx, "u"+id, "sess-"+id)
		assert.Equal(t, tempwatch.TokenStatus{ValidAfter: time.UnixMicro(0)}, st, "from the next store")
		l.Hit(ctx, "acct", time.Minute)
		assert.Zero(t, l.Blocked(ctx, "acct", 1))
		l.Reset(ctx, "acct")
		c.OfferLatest(ctx, tempwatch.Reading{SensorID: "s1", MeasuredAt: time.Now()})
		_, err = c.LatestReadings(ctx, []string{"s1"})
		require.NoError(t, err)
		slowest = max(slowest, time.Since(start))
	}
	assert.Less(t, slowest, timeout/10, "six operations against a refused Redis, the slowest round")
	assert.Positive(t, rc.Degraded()["token.check"])

	srv.Restart()
	require.Eventually(t, func() bool { return rc.Ping(ctx) == nil }, 10*time.Second, 20*time.Millisecond, "the client reconnects once Redis is back")
}
