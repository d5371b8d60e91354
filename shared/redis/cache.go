package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// LatestStore loads latest readings from the database of record.
type LatestStore interface {
	LatestReadings(ctx context.Context, sensorIDs []string) (map[string]tempwatch.Reading, error)
}

// CacheOptions configures a Cache. Zero values take the defaults.
type CacheOptions struct {
	Store        LatestStore   // fallback for reads; nil for write-only use
	LatestTTL    time.Duration // latest-reading entries, default DefaultLatestTTL
	AggregateTTL time.Duration // aggregate entries, default 5 min
	// LocalTTL, when > 0, keeps latest readings in process memory that long.
	// Writes in other processes do not reach it, so it trades freshness (up to
	// LocalTTL) for speed; off by default.
	LocalTTL time.Duration
}

// Cache is the read cache in front of the read paths: the latest reading of
// each sensor, and aggregate results keyed by per-sensor versions.
//
// Writers (ingest, measurements, sensors) call it after the PostgreSQL commit:
//
//	c.OfferLatest(ctx, r)               // after inserting reading r
//	c.InvalidateAggregates(ctx, ids...) // after inserting readings (ingest): aggregates only
//	c.InvalidateSensor(ctx, ids...)     // after corrections, deletes (readings or sensors)
//
// OfferLatest sets the sensor's cached latest reading only when r.MeasuredAt
// is newer than the cached one (compared atomically in Redis), so a late
// reading never replaces a newer one and a slow writer never puts an older
// value back.
//
// InvalidateSensor bumps each sensor's version (INCR), which every
// aggregate/page cache key includes, and replaces the latest-reading entry by
// a "gone" marker: only a reader that starts after the invalidation may fill
// it again (it checks the version it read before its PostgreSQL query), and
// an OfferLatest meeting the marker bumps the version instead, so a reader
// that queried before that insert cannot fill either. InvalidateAggregates
// only bumps the versions: what ingest needs after OfferLatest, since an
// insert cannot make a cached latest reading wrong that OfferLatest did not
// replace. (Ingest may call InvalidateSensor instead; it is correct, but it
// sends the next latest read to PostgreSQL.)
//
// Writes return nothing: the data is committed, a failure is reported by the
// Client (see the package documentation), and the entries expire (latest:
// CacheOptions.LatestTTL, aggregates: CacheOptions.AggregateTTL).
//
// Readers: LatestReadings returns the latest reading of each sensor that has
// one (sensors without readings are absent from the map), from Redis, else
// from PostgreSQL (CacheOptions.Store); Aggregate returns a cached query
// result or runs the query. With Redis down both answer from PostgreSQL.
type Cache struct {
	c       *Client
	opt     CacheOptions
	flights singleflight.Group

	mu    sync.Mutex
	local map[string]localEntry
	// dirty holds the sensors whose entries a write of this Cache could
	// not keep right (Redis did not answer); the next write repairs them.
	dirty map[string]struct{}
}

// DefaultLatestTTL is how long a latest-reading entry lives unless
// CacheOptions.LatestTTL says otherwise, and so the longest a latest reading
// stays stale when Redis misses an update (paused, partitioned) and the
// writer never writes again. Writes renew the entries of active sensors, so
// only an idle sensor's entry is ever refilled for having expired.
const DefaultLatestTTL = 30 * time.Second

// maxDirty bounds the sensors remembered for repair; past it the rest wait
// out their entries' lifetime.
const maxDirty = 10_000

type localEntry struct {
	r   tempwatch.Reading
	exp time.Time
}

// NewCache returns the read cache over c.
func NewCache(c *Client, opt CacheOptions) *Cache {
	if opt.LatestTTL <= 0 {
		opt.LatestTTL = DefaultLatestTTL
	}
	if opt.AggregateTTL <= 0 {
		opt.AggregateTTL = 5 * time.Minute
	}
	return &Cache{c: c, opt: opt, local: map[string]localEntry{}, dirty: map[string]struct{}{}}
}

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
func (c *Cache) OfferLatest(ctx context.Context, rs ...tempwatch.Reading) {
	for _, r := range rs {
		c.offerLocal(r)
	}
	type offer struct {
		keys []string
		args []any
	}
	offers := make([]offer, 0, len(rs))
	for _, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			continue // a Reading always encodes
		}
		offers = append(offers, offer{[]string{c.c.latestKey(r.SensorID), c.c.versionKey(r.SensorID)},
			[]any{r.MeasuredAt.UnixMicro(), b, c.opt.LatestTTL.Milliseconds()}})
	}
	err := c.c.do(ctx, opLatestOffer, func(ctx context.Context, rdb *goredis.Client) error {
		// EVALSHA, and EVAL again if Redis lost its script cache (a restart):
		// an offer is a compare-and-set, so running one twice is harmless.
		run := func(eval func(context.Context, goredis.Scripter, []string, ...any) *goredis.Cmd) error {
			_, err := rdb.Pipelined(ctx, func(p goredis.Pipeliner) error { // the error of the first command that failed
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
		return err
	})
	c.settle(ctx, err, sensorsOf(rs))
}

func sensorsOf(rs []tempwatch.Reading) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.SensorID
	}
	return ids
}

// settle follows a write of ids' entries: a failed one leaves them to
// repair; a successful one (Redis answers again) repairs those a failed
// write left, as InvalidateSensor would have. So a latest reading a lost
// offer left stale is right again with this process's first write after
// the outage, and in any case when its entry expires (LatestTTL).
func (c *Cache) settle(ctx context.Context, err error, ids []string) {
	c.mu.Lock()
	if err != nil {
		for _, id := range ids {
			if len(c.dirty) < maxDirty {
				c.dirty[id] = struct{}{}
			}
		}
		c.mu.Unlock()
		return
	}
	repair := make([]string, 0, len(c.dirty))
	for id := range c.dirty {
		repair = append(repair, id)
	}
	clear(c.dirty)
	c.mu.Unlock()
	if len(repair) > 0 {
		c.invalidate(ctx, opSensorRepair, repair)
	}
}

// InvalidateSensor bumps the version of each sensor and marks its latest
// reading gone, after a write that may have changed its aggregates or latest.
func (c *Cache) InvalidateSensor(ctx context.Context, sensorIDs ...string) {
	c.mu.Lock()
	for _, id := range sensorIDs {
		delete(c.local, id)
	}
	c.mu.Unlock()
	c.invalidate(ctx, opSensorInvalidate, sensorIDs)
}

func (c *Cache) invalidate(ctx context.Context, o op, sensorIDs []string) {
	err := c.c.do(ctx, o, func(ctx context.Context, rdb *goredis.Client) error {
		_, err := rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			for _, id := range sensorIDs {
				p.Incr(ctx, c.c.versionKey(id))
				p.Del(ctx, c.c.latestKey(id))
				p.HSet(ctx, c.c.latestKey(id), "at", gone)
				p.PExpire(ctx, c.c.latestKey(id), c.opt.LatestTTL)
			}
			return nil
		})
		return err
	})
	c.settle(ctx, err, sensorIDs)
}

// InvalidateAggregates bumps the version of each sensor, after inserts whose
// latest readings were offered with OfferLatest.
func (c *Cache) InvalidateAggregates(ctx context.Context, sensorIDs ...string) {
	err := c.c.do(ctx, opAggregatesInvalidate, func(ctx context.Context, rdb *goredis.Client) error {
		_, err := rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, id := range sensorIDs {
				p.Incr(ctx, c.c.versionKey(id))
			}
			return nil
		})
		return err
	})
	c.settle(ctx, err, sensorIDs)
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

type cachedLatest struct {
	r       tempwatch.Reading
	ok      bool   // r is a usable entry
	version string // version when read, for fills
}

// readLatest fetches the entries and versions of ids in one round trip; ok
// is false when Redis did not answer.
func (c *Cache) readLatest(ctx context.Context, ids []string) (out []cachedLatest, ok bool) {
	hm := make([]*goredis.SliceCmd, len(ids))
	vs := make([]*goredis.StringCmd, len(ids))
	err := c.c.do(ctx, opLatestGet, func(ctx context.Context, rdb *goredis.Client) error {
		p := rdb.Pipeline()
		for i, id := range ids {
			hm[i] = p.HMGet(ctx, c.c.latestKey(id), "at", "r")
			vs[i] = p.Get(ctx, c.c.versionKey(id))
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
		for i := range ids {
			if err := vs[i].Err(); err != nil && !errors.Is(err, goredis.Nil) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, false
	}
	out = make([]cachedLatest, len(ids))
	for i := range ids {
		out[i].version = vs[i].Val()
		if out[i].version == "" {
			out[i].version = "0"
		}
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
	return out, true
}

// fillLatest writes readings loaded from PostgreSQL, each only if the
// sensor's version is still the one read before the load.
func (c *Cache) fillLatest(ctx context.Context, rs map[string]tempwatch.Reading, versions map[string]string) {
	_ = c.c.do(ctx, opLatestFill, func(ctx context.Context, rdb *goredis.Client) error {
		p := rdb.Pipeline()
		for id, r := range rs {
			b, err := json.Marshal(r)
			if err != nil {
				continue
			}
			// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT.
			fillScript.Eval(ctx, p, []string{c.c.latestKey(id), c.c.versionKey(id)},
				versions[id], r.MeasuredAt.UnixMicro(), b, c.opt.LatestTTL.Milliseconds())
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
		return nil
	})
}

// countCache counts n lookups of cache with result (hit, miss, degraded:
// Redis did not answer) in ctx's invocation metrics.
func countCache(ctx context.Context, cache, result string, n int) {
	metrics.Add(ctx, metrics.CacheRequests, float64(n), metrics.Function(), cache, result)
}

// lookups are what one shared lookup found, counted by every caller that
// shared it (each asked the cache): its value, and its hits, misses and
// reads answered without Redis.
type lookups struct {
	v                      any
	hits, misses, degraded int
}

func (l lookups) count(ctx context.Context, cache string) {
	countCache(ctx, cache, "hit", l.hits)
	countCache(ctx, cache, "miss", l.misses)
	countCache(ctx, cache, "degraded", l.degraded)
}

// LatestReadings returns the latest reading (newest measured_at) of each of
// sensorIDs that has one, from process memory (when enabled), Redis, or
// PostgreSQL, in that order. Concurrent calls for the same sensors share one
// Redis read and at most one PostgreSQL query.
func (c *Cache) LatestReadings(ctx context.Context, sensorIDs []string) (map[string]tempwatch.Reading, error) {
	out := make(map[string]tempwatch.Reading, len(sensorIDs))
	missing := c.fromLocal(sensorIDs, out)
	countCache(ctx, "latest", "hit", len(sensorIDs)-len(missing))
	if len(missing) == 0 {
		return out, nil
	}
	if c.opt.Store == nil {
		return nil, errors.New("redis: cache has no store to read latest readings from")
	}
	missing = slices.Clone(missing)
	slices.Sort(missing)
	v, err, _ := c.flights.Do("latest:"+strings.Join(missing, ","), func() (any, error) {
		return c.loadLatest(ctx, missing)
	})
	l := v.(lookups)
	l.count(ctx, "latest")
	if err != nil {
		return nil, err
	}
	for id, r := range l.v.(map[string]tempwatch.Reading) {
		out[id] = r
		c.offerLocal(r)
	}
	return out, nil
}

// loadLatest reads ids from Redis, and the misses from PostgreSQL, filling
// Redis with what the versions read before the query still allow.
func (c *Cache) loadLatest(ctx context.Context, ids []string) (lookups, error) {
	res := make(map[string]tempwatch.Reading, len(ids))
	l := lookups{v: res}
	versions := map[string]string{}
	missing := ids
	cached, ok := c.readLatest(ctx, ids)
	if ok {
		missing = nil
		for i, id := range ids {
			if cached[i].ok {
				res[id] = cached[i].r
			} else {
				missing = append(missing, id)
				versions[id] = cached[i].version
			}
		}
		l.hits, l.misses = len(res), len(missing)
	} else {
		l.degraded = len(ids)
	}
	if len(missing) == 0 {
		return l, nil
	}
	rs, err := c.opt.Store.LatestReadings(ctx, missing)
	if err != nil {
		return l, err
	}
	// Without the versions (Redis did not answer) nothing may be filled.
	if ok {
		c.fillLatest(context.WithoutCancel(ctx), rs, versions)
	}
	for id, r := range rs {
		res[id] = r
	}
	return l, nil
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
		key, b, hit, ok := c.aggregateGet(ctx, kind, params, sensorIDs)
		var l lookups
		switch {
		case hit:
			return lookups{v: b, hits: 1}, nil
		case ok:
			l.misses = 1
		default:
			l.degraded = 1
		}
		b, err := load(ctx)
		if err != nil {
			return l, err
		}
		l.v = b
		// Without the versions (Redis did not answer) there is no key to fill.
		if ok {
			_ = c.c.do(context.WithoutCancel(ctx), opAggregateFill, func(ctx context.Context, rdb *goredis.Client) error {
				return rdb.Set(ctx, key, b, c.opt.AggregateTTL).Err()
			})
		}
		return l, nil
	})
	l := v.(lookups)
	l.count(ctx, "aggregate")
	if err != nil {
		return nil, err
	}
	return l.v.([]byte), nil
}

// aggregateGet returns the key of the query under the sensors' current
// versions and, on a hit, its cached result; ok is false when Redis did not
// answer.
func (c *Cache) aggregateGet(ctx context.Context, kind, params string, sensorIDs []string) (key string, body []byte, hit, ok bool) {
	err := c.c.do(ctx, opAggregateGet, func(ctx context.Context, rdb *goredis.Client) error {
		h := sha256.New()
		h.Write([]byte(params))
		if len(sensorIDs) > 0 {
			keys := make([]string, len(sensorIDs))
			for i, id := range sensorIDs {
				keys[i] = c.c.versionKey(id)
			}
			vs, err := rdb.MGet(ctx, keys...).Result()
			if err != nil {
				return err
			}
			for i, v := range vs {
				s, _ := v.(string)
				fmt.Fprintf(h, "\x00%s=%s", sensorIDs[i], s)
			}
		}
		key = c.c.aggregateKey(kind, hex.EncodeToString(h.Sum(nil)))
		b, err := rdb.Get(ctx, key).Bytes()
		switch {
		case err == nil:
			body, hit = b, true
		case !errors.Is(err, goredis.Nil):
			return err
		}
		return nil
	})
	return key, body, hit, err == nil
}
