// Package cache is the Redis cache in front of the read paths: the latest
// reading of each sensor, and aggregate results keyed by per-sensor versions.
//
// # Writers (ingest, measurements, sensors): call after the PostgreSQL commit
//
//	c := cache.New(rdb, cache.Options{Prefix: "tw:"}) // rdb from redis.Open; may be nil
//	c.OfferLatest(ctx, r)               // after inserting reading r
//	c.InvalidateAggregates(ctx, ids...) // after inserting readings (ingest): aggregates only
//	c.InvalidateSensor(ctx, ids...)     // after corrections, deletes (readings or sensors)
//
// OfferLatest(ctx, r tempwatch.Reading) error sets the sensor's cached latest
// reading only when r.MeasuredAt is newer than the cached one (compared
// atomically in Redis), so a late reading never replaces a newer one and a
// slow writer never puts an older value back.
//
// InvalidateSensor(ctx, sensorIDs ...string) error bumps each sensor's version
// (INCR), which every aggregate/page cache key includes, and replaces the
// latest-reading entry by a "gone" marker: only a reader that starts after the
// invalidation may fill it again (it checks the version it read before its
// PostgreSQL query), and an OfferLatest meeting the marker bumps the version
// instead, so a reader that queried before that insert cannot fill either.
// InvalidateAggregates(ctx, sensorIDs ...string) error only bumps the
// versions: what ingest needs after OfferLatest, since an insert cannot make
// a cached latest reading wrong that OfferLatest did not replace. (Ingest may
// call InvalidateSensor instead; it is correct, but it sends the next latest
// read to PostgreSQL.)
//
// Both return an error that the caller logs; neither blocks for more than
// Options.Timeout (default 200 ms). They never fail because Redis is down in a
// way that should fail the write: the data is committed, the cache entries
// expire (latest: Options.LatestTTL, aggregates: Options.AggregateTTL).
//
// # Readers
//
//	LatestReadings(ctx, sensorIDs) (map[string]tempwatch.Reading, error)
//
// returns the latest reading of each sensor that has one (sensors without
// readings are absent from the map), from Redis, else from PostgreSQL
// (Options.Store). The sensor list and detail use it.
//
// # Key layout (all under Options.Prefix, default "tw:")
//
//	tw:sensor:<id>:latest   hash {at: measured_at unix µs | "gone", r: reading JSON}
//	tw:sensor:<id>:ver      integer version, INCR on every invalidation
//	tw:agg:<kind>:<sha256>  cached aggregate JSON; the hash covers the query
//	                        and the versions of every sensor it reads
//
// With Redis down, reads answer from PostgreSQL and the counter
// cache_degraded_reads_total counts them (expvar, and a CloudWatch EMF log
// record per backoff window when Options.Log is set); nothing fails at
// start-up.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// degradedReads counts reads answered without Redis, process-wide.
var degradedReads = expvar.NewInt("cache_degraded_reads_total")

// ErrNoRedis is returned by writes when no Redis client is configured.
var ErrNoRedis = errors.New("cache: no Redis configured")

// LatestStore loads latest readings from the database of record.
type LatestStore interface {
	LatestReadings(ctx context.Context, sensorIDs []string) (map[string]tempwatch.Reading, error)
}

// Options configures a Cache. Zero values take the defaults.
type Options struct {
	Prefix       string        // key prefix, default "tw:"
	Store        LatestStore   // fallback for reads; nil for write-only use
	Timeout      time.Duration // per Redis call, default 200 ms
	LatestTTL    time.Duration // latest-reading entries, default 10 min
	AggregateTTL time.Duration // aggregate entries, default 5 min
	// LocalTTL, when > 0, keeps latest readings in process memory that long.
	// Writes in other processes do not reach it, so it trades freshness (up to
	// LocalTTL) for speed; off by default.
	LocalTTL time.Duration
	// Backoff is how long reads skip Redis after it failed, default 1 s.
	Backoff time.Duration
	// Log, when set, gets one warning per Backoff window while reads go
	// without Redis,
	// carrying cache_degraded_reads_total in CloudWatch Embedded Metric
	// Format, so the count is a metric under Lambda too (expvar is not
	// scraped there).
	Log *slog.Logger
}

// Cache is the read cache. Its zero value is not usable; call New.
type Cache struct {
	rdb       *goredis.Client
	opt       Options
	flights   singleflight.Group
	downUntil atomic.Int64 // unix ns before which reads skip Redis
	degraded  atomic.Int64
	// nextReport is when the next degraded-read log record may be written.
	nextReport atomic.Int64

	mu    sync.Mutex
	local map[string]localEntry
}

type localEntry struct {
	r   tempwatch.Reading
	exp time.Time
}

// New returns a cache over rdb (nil: no Redis, every read degraded).
func New(rdb *goredis.Client, opt Options) *Cache {
	if opt.Prefix == "" {
		opt.Prefix = "tw:"
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 200 * time.Millisecond
	}
	if opt.LatestTTL <= 0 {
		opt.LatestTTL = 10 * time.Minute
	}
	if opt.AggregateTTL <= 0 {
		opt.AggregateTTL = 5 * time.Minute
	}
	if opt.Backoff <= 0 {
		opt.Backoff = time.Second
	}
	return &Cache{rdb: rdb, opt: opt, local: map[string]localEntry{}}
}

// DegradedReads returns how many reads of this cache were answered without Redis.
func (c *Cache) DegradedReads() int64 { return c.degraded.Load() }

func (c *Cache) latestKey(id string) string  { return c.opt.Prefix + "sensor:" + id + ":latest" }
func (c *Cache) versionKey(id string) string { return c.opt.Prefix + "sensor:" + id + ":ver" }

const gone = "gone"

// offerScript: KEYS latest, ver; ARGV at(µs), json, ttl(ms).
var offerScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'at')
if cur == 'gone' then redis.call('INCR', KEYS[2]) return 0 end
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'at', ARGV[1], 'r', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)

// fillScript: like offerScript, for readers: only while the version is the
// one read before the PostgreSQL query. ARGV ver, at, json, ttl.
var fillScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[2]) or '0'
if v ~= ARGV[1] then return 0 end
local cur = redis.call('HGET', KEYS[1], 'at')
if cur and cur ~= 'gone' and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'at', ARGV[2], 'r', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`)

// OfferLatest makes each reading the cached latest reading of its sensor
// unless the cache holds one measured at the same time or later. All go to
// Redis in one round trip.
func (c *Cache) OfferLatest(ctx context.Context, rs ...tempwatch.Reading) error {
	for _, r := range rs {
		c.offerLocal(r)
	}
	if c.rdb == nil {
		return ErrNoRedis
	}
	type offer struct {
		keys []string
		args []any
	}
	offers := make([]offer, len(rs))
	for i, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("cache: encode reading: %w", err)
		}
		offers[i] = offer{[]string{c.latestKey(r.SensorID), c.versionKey(r.SensorID)},
			[]any{r.MeasuredAt.UnixMicro(), b, c.opt.LatestTTL.Milliseconds()}}
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	// EVALSHA, and EVAL again if Redis lost its script cache (a restart):
	// an offer is a compare-and-set, so running one twice is harmless.
	run := func(eval func(context.Context, goredis.Scripter, []string, ...any) *goredis.Cmd) error {
		_, err := c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error { // the error of the first command that failed
			for _, o := range offers {
				eval(ctx, p, o.keys, o.args...)
			}
			return nil
		})
		return err
	}
	err := run(offerScript.EvalSha)
	if goredis.HasErrorPrefix(err, "NOSCRIPT") {
		err = run(offerScript.Eval)
	}
	if err != nil {
		return fmt.Errorf("cache: offer latest of %d sensors: %w", len(rs), err)
	}
	return nil
}

// InvalidateSensor bumps the version of each sensor and marks its latest
// reading gone, after a write that may have changed its aggregates or latest.
func (c *Cache) InvalidateSensor(ctx context.Context, sensorIDs ...string) error {
	c.mu.Lock()
	for _, id := range sensorIDs {
		delete(c.local, id)
	}
	c.mu.Unlock()
	if c.rdb == nil {
		return ErrNoRedis
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	_, err := c.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for _, id := range sensorIDs {
			p.Incr(ctx, c.versionKey(id))
			p.Del(ctx, c.latestKey(id))
			p.HSet(ctx, c.latestKey(id), "at", gone)
			p.PExpire(ctx, c.latestKey(id), c.opt.LatestTTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: invalidate sensors %v: %w", sensorIDs, err)
	}
	return nil
}

// InvalidateAggregates bumps the version of each sensor, after inserts whose
// latest readings were offered with OfferLatest.
func (c *Cache) InvalidateAggregates(ctx context.Context, sensorIDs ...string) error {
	if c.rdb == nil {
		return ErrNoRedis
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	_, err := c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, id := range sensorIDs {
			p.Incr(ctx, c.versionKey(id))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: invalidate aggregates of sensors %v: %w", sensorIDs, err)
	}
	return nil
}

func (c *Cache) offerLocal(r tempwatch.Reading) {
	if c.opt.LocalTTL <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.local[r.SensorID]; ok && !e.r.MeasuredAt.Before(r.MeasuredAt) {
		return
	}
	c.local[r.SensorID] = localEntry{r: r, exp: time.Now().Add(c.opt.LocalTTL)}
}

// redisUsable reports whether reads should try Redis now.
func (c *Cache) redisUsable() bool {
	return c.rdb != nil && time.Now().UnixNano() >= c.downUntil.Load()
}

// redisFailed notes a failed read: reads skip Redis for Options.Backoff.
func (c *Cache) redisFailed() { c.downUntil.Store(time.Now().Add(c.opt.Backoff).UnixNano()) }

func (c *Cache) markDegraded() {
	c.degraded.Add(1)
	degradedReads.Add(1)
	now := time.Now()
	next := c.nextReport.Load()
	if c.opt.Log == nil || now.UnixNano() < next || !c.nextReport.CompareAndSwap(next, now.Add(c.opt.Backoff).UnixNano()) {
		return
	}
	c.opt.Log.Warn("redis unavailable: reads answered from PostgreSQL",
		slog.Group("_aws",
			slog.Int64("Timestamp", now.UnixMilli()),
			slog.Any("CloudWatchMetrics", []map[string]any{{
				"Namespace": "tempwatch",
				"Metrics":   []map[string]string{{"Name": "cache_degraded_reads_total", "Unit": "Count"}},
			}}),
		),
		slog.Int64("cache_degraded_reads_total", degradedReads.Value()))
}

type cachedLatest struct {
	r       tempwatch.Reading
	ok      bool   // r is a usable entry
	version string // version when read, for fills
}

// readLatest fetches the entries and versions of ids in one round trip.
func (c *Cache) readLatest(ctx context.Context, ids []string) ([]cachedLatest, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	p := c.rdb.Pipeline()
	hm := make([]*goredis.SliceCmd, len(ids))
	vs := make([]*goredis.StringCmd, len(ids))
	for i, id := range ids {
		hm[i] = p.HMGet(ctx, c.latestKey(id), "at", "r")
		vs[i] = p.Get(ctx, c.versionKey(id))
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	out := make([]cachedLatest, len(ids))
	for i := range ids {
		v, err := vs[i].Result()
		switch {
		case errors.Is(err, goredis.Nil):
			v = "0"
		case err != nil:
			return nil, err
		}
		out[i].version = v
		vals := hm[i].Val()
		at, _ := vals[0].(string)
		raw, _ := vals[1].(string)
		if at == "" || at == gone || raw == "" {
			continue
		}
		if json.Unmarshal([]byte(raw), &out[i].r) == nil {
			out[i].ok = true
		}
	}
	return out, nil
}

// fillLatest writes readings loaded from PostgreSQL, each only if the
// sensor's version is still the one read before the load.
func (c *Cache) fillLatest(ctx context.Context, rs map[string]tempwatch.Reading, versions map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	p := c.rdb.Pipeline()
	for id, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			continue
		}
		// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT.
		fillScript.Eval(ctx, p, []string{c.latestKey(id), c.versionKey(id)},
			versions[id], r.MeasuredAt.UnixMicro(), b, c.opt.LatestTTL.Milliseconds())
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		c.redisFailed()
	}
}

// LatestReadings returns the latest reading (newest measured_at) of each of
// sensorIDs that has one, from process memory (when enabled), Redis, or
// PostgreSQL, in that order. Concurrent calls for the same sensors share one
// Redis read and at most one PostgreSQL query.
func (c *Cache) LatestReadings(ctx context.Context, sensorIDs []string) (map[string]tempwatch.Reading, error) {
	out := make(map[string]tempwatch.Reading, len(sensorIDs))
	missing := c.fromLocal(sensorIDs, out)
	if len(missing) == 0 {
		return out, nil
	}
	if c.opt.Store == nil {
		return nil, errors.New("cache: no store to read latest readings from")
	}
	missing = slices.Clone(missing)
	slices.Sort(missing)
	v, err, _ := c.flights.Do("latest:"+strings.Join(missing, ","), func() (any, error) {
		return c.loadLatest(ctx, missing)
	})
	if err != nil {
		return nil, err
	}
	res := v.(latestResult)
	if res.degraded {
		c.markDegraded()
	}
	for id, r := range res.readings {
		out[id] = r
		c.offerLocal(r)
	}
	return out, nil
}

type latestResult struct {
	readings map[string]tempwatch.Reading
	degraded bool // answered without Redis
}

// loadLatest reads ids from Redis, and the misses from PostgreSQL, filling
// Redis with what the versions read before the query still allow.
func (c *Cache) loadLatest(ctx context.Context, ids []string) (latestResult, error) {
	res := latestResult{readings: make(map[string]tempwatch.Reading, len(ids)), degraded: true}
	versions := map[string]string{}
	missing := ids
	if c.redisUsable() {
		if cached, err := c.readLatest(ctx, ids); err != nil {
			c.redisFailed()
		} else {
			res.degraded = false
			missing = nil
			for i, id := range ids {
				if cached[i].ok {
					res.readings[id] = cached[i].r
				} else {
					missing = append(missing, id)
					versions[id] = cached[i].version
				}
			}
		}
	}
	if len(missing) == 0 {
		return res, nil
	}
	rs, err := c.opt.Store.LatestReadings(ctx, missing)
	if err != nil {
		return res, err
	}
	if !res.degraded {
		c.fillLatest(context.WithoutCancel(ctx), rs, versions)
	}
	for id, r := range rs {
		res.readings[id] = r
	}
	return res, nil
}

func (c *Cache) fromLocal(ids []string, out map[string]tempwatch.Reading) []string {
	if c.opt.LocalTTL <= 0 {
		return ids
	}
	now := time.Now()
	var missing []string
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if e, ok := c.local[id]; ok && now.Before(e.exp) {
			out[id] = e.r
		} else {
			missing = append(missing, id)
		}
	}
	return missing
}

// Latest returns the latest reading of one sensor, or ENOTFOUND when it has none.
func (c *Cache) Latest(ctx context.Context, sensorID string) (tempwatch.Reading, error) {
	m, err := c.LatestReadings(ctx, []string{sensorID})
	if err != nil {
		return tempwatch.Reading{}, err
	}
	r, ok := m[sensorID]
	if !ok {
		return tempwatch.Reading{}, tempwatch.Errorf(tempwatch.ENOTFOUND, "The sensor has no readings yet.")
	}
	return r, nil
}

// Aggregate returns the cached result of the query named by kind and params
// over sensorIDs, or runs load and caches its result under a key that
// includes the sensors' current versions: an invalidation after the versions
// were read sends the next reader to a new key, and this load can only write
// the old one. Concurrent calls with the same kind, params and sensors share
// one Redis lookup and at most one load.
func (c *Cache) Aggregate(ctx context.Context, kind, params string, sensorIDs []string, load func(context.Context) ([]byte, error)) ([]byte, error) {
	v, err, _ := c.flights.Do("agg:"+kind+":"+params+":"+strings.Join(sensorIDs, ","), func() (any, error) {
		if c.redisUsable() {
			b, err := c.aggregateRedis(ctx, kind, params, sensorIDs, load)
			if !errors.Is(err, errRedis) {
				return aggregateResult{body: b}, err
			}
			c.redisFailed()
		}
		b, err := load(ctx)
		return aggregateResult{body: b, degraded: true}, err
	})
	if err != nil {
		return nil, err
	}
	res := v.(aggregateResult)
	if res.degraded {
		c.markDegraded()
	}
	return res.body, nil
}

type aggregateResult struct {
	body     []byte
	degraded bool
}

var errRedis = errors.New("cache: redis unavailable")

func (c *Cache) aggregateRedis(ctx context.Context, kind, params string, sensorIDs []string, load func(context.Context) ([]byte, error)) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	h := sha256.New()
	h.Write([]byte(params))
	if len(sensorIDs) > 0 {
		keys := make([]string, len(sensorIDs))
		for i, id := range sensorIDs {
			keys[i] = c.versionKey(id)
		}
		vs, err := c.rdb.MGet(rctx, keys...).Result()
		if err != nil {
			return nil, errRedis
		}
		for i, v := range vs {
			s, _ := v.(string)
			fmt.Fprintf(h, "\x00%s=%s", sensorIDs[i], s)
		}
	}
	key := c.opt.Prefix + "agg:" + kind + ":" + hex.EncodeToString(h.Sum(nil))
	b, err := c.rdb.Get(rctx, key).Bytes()
	switch {
	case err == nil:
		return b, nil
	case !errors.Is(err, goredis.Nil):
		return nil, errRedis
	}
	b, err = load(ctx)
	if err != nil {
		return nil, err
	}
	sctx, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), c.opt.Timeout)
	defer cancel2()
	if err := c.rdb.Set(sctx, key, b, c.opt.AggregateTTL).Err(); err != nil {
		c.redisFailed()
	}
	return b, nil
}
