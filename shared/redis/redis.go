// Package redis is the Redis adapter: every key tempwatch keeps in Redis, its
// prefix, its lifetime, the time a call may take and what happens when Redis
// fails. It imports only the domain (shared/tempwatch) and the driver.
//
//	c, err := redis.Open(url, redis.Options{Prefix: prefix, Log: log}) // does not fail when Redis is away
//	cache := redis.NewCache(c, redis.CacheOptions{Store: readings})   // latest readings, aggregates (cache.go)
//	devices := redis.NewDeviceStore(c, postgresDevices)               // device lookups (devices.go)
//	caches := redis.NewSensorCaches(c, readings)                      // what the sensors function drops (sensors.go)
//	limiter := redis.NewLimiter(c)                                    // auth (auth.go)
//	cutoffs := redis.NewTokenCutoffs(c, postgresUsers)                // every token check (cutoffs.go)
//	sessions := redis.NewSessionStates(c, postgresSessions)           // every token check (cutoffs.go)
//
// # Key layout
//
// Every key starts with Options.Prefix (REDIS_PREFIX, default [DefaultPrefix]),
// so deployments and tests can share one Redis. <p> is the prefix.
//
//	key                            type    lifetime              held by, and what
//	<p>sensor:<id>:latest          hash    LatestTTL (30 s)      Cache: the sensor's latest reading,
//	                                                             {at: measured_at in unix µs | "gone", r: reading JSON}
//	<p>sensor:<id>:ver             integer none                  Cache: INCR by every invalidation of the sensor
//	<p>agg:<kind>:<sha256>         string  AggregateTTL (5 min)  Cache: an aggregate's JSON; the hash covers the
//	                                                             query and the version of every sensor it reads
//	<p>device:<slug>/<device-id>   string  DeviceTTL (5 min)     DeviceStore: the tempwatch.Device of a topic
//	<p>devkey:<hex sha256 of key>  string  DeviceTTL             DeviceStore: the tempwatch.Device of a device key
//	                                                             (its hash: Redis never holds a key)
//	<p>sensor:<id>:devices         set     DeviceTTL, renewed    DeviceStore: the keys of the two rows above that
//	                                       by every fill         hold the sensor, to drop them by sensor id
//	<p>devices:gen                 integer none                  DeviceStore: INCR by every forget; a fill lands
//	                                                             only if it is unchanged since its lookup began
//	<p>rl:<key>                    integer the window            Limiter: failures of key (an account's email
//	                                                             hash, a client address, a device token's
//	                                                             nonce) in a fixed window
//	<p>user:<id>:cutoff            string  CutoffTTL (10 s)      TokenCutoffs: the user's token cutoff in unix µs,
//	                                                             or "gone" (deleted); a write keeps the later of
//	                                                             the two (also in memory, CutoffLocalTTL, 1 s)
//	<p>session:<id>:state          string  CutoffTTL (10 s)      TokenCutoffs (NewSessionStates): a session's state
//	                                                             as a cutoff, "0" (live) or "gone" (ended), kept
//	                                                             as the users' cutoffs are
//
// # When Redis fails
//
// Redis holds copies and counters, never the record, so one rule covers
// every operation, each named (latest.get, device.fill, limit.check, …):
//
//  1. Every call is bounded by Options.Timeout (default [Timeout]), connecting
//     included.
//  2. A failed call is reported in one place: counted in the invocation's
//     metric tempwatch_redis_degraded_total by operation (shared/metrics,
//     published per invocation; and by [Client.Degraded]), and logged as
//     one warning "redis unavailable" per operation and Backoff window,
//     carrying the operation and the error.
//  3. The caller then goes on as on a miss: a lookup returns nothing cached
//     (the service asks PostgreSQL), a fill, offer, invalidation or forget
//     is dropped (every entry expires within its lifetime above, the bound
//     the design already lives with; the Cache also remembers the sensors
//     of a lost write and repairs them with its first write that Redis
//     takes again), the limiter reports nobody blocked
//     and counts nothing; a token cutoff or session state is read from
//     PostgreSQL, and the token refused (503) only if PostgreSQL does not
//     answer either. No request fails because of Redis alone, and nothing
//     fails at start-up without it.
//  4. After a failure, lookups and fills (which PostgreSQL stands behind),
//     and the auth reads whose answer without Redis is the same whether
//     they were sent or not (limiter checks and hits),
//     skip Redis for Options.Backoff (default 1 s) and count as degraded, so
//     an outage costs no timeout per request. Writes that keep entries
//     right (offers, invalidations, forgets, cutoffs, session ends, limiter
//     resets) always try: a skipped invalidation would leave an entry stale.
//     A refused connection fails at once (one dial, no pause before the
//     retry), so with Redis down even those cost next to nothing.
package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// DefaultPrefix starts every key when Options.Prefix is empty (REDIS_PREFIX).
const DefaultPrefix = "tw:"

// Timeout bounds every Redis call, connecting included, unless
// Options.Timeout says otherwise.
const Timeout = 200 * time.Millisecond

// ErrNoRedis is what operations report when the Client has no connection.
var ErrNoRedis = errors.New("redis: no Redis configured")

// errBackoff is what lookups report while they skip Redis after a failure.
var errBackoff = errors.New("redis: skipped after a recent failure")

// Options configures a Client. Zero values take the defaults.
type Options struct {
	Prefix  string        // key prefix, default DefaultPrefix
	Timeout time.Duration // per call, default Timeout
	Backoff time.Duration // how long lookups skip Redis after a failure, default 1 s
	// Log gets the failure reports (rule 2 above); nil: they are only counted.
	Log *slog.Logger
}

// Client is tempwatch's Redis: a connection, the key prefix, and the
// bookkeeping of failures. The key families (Cache, DeviceStore,
// TokenCutoffs, Limiter) are built over one Client and share its state: a
// failure seen by one makes the lookups of all skip Redis for Backoff.
type Client struct {
	rdb       *goredis.Client
	opt       Options
	downUntil atomic.Int64 // unix ns before which lookups skip Redis
	ops       [numOps]opState
}

type opState struct {
	degraded   atomic.Int64
	nextReport atomic.Int64 // unix ns before which no record is written
}

// op names an operation in the failure reports.
type op uint8

const (
	opLatestGet op = iota
	opLatestFill
	opLatestOffer
	opSensorInvalidate
	opAggregatesInvalidate
	opAggregateGet
	opAggregateFill
	opDeviceGet
	opDeviceFill
	opDeviceForget
	opLimitCheck
	opLimitHit
	opLimitReset
	opCutoffGet
	opCutoffFill
	opCutoffSet
	opSessionGet
	opSessionFill
	opSessionSet
	opTokenCheck
	opSensorRepair
	numOps
)

// ops: each operation's name and whether it skips Redis for Backoff after
// a failure (rule 4 of the package documentation).
var ops = [numOps]struct {
	name      string
	skippable bool
}{
	opLatestGet:            {"latest.get", true},
	opLatestFill:           {"latest.fill", true},
	opLatestOffer:          {"latest.offer", false},
	opSensorInvalidate:     {"sensor.invalidate", false},
	opAggregatesInvalidate: {"aggregates.invalidate", false},
	opAggregateGet:         {"aggregate.get", true},
	opAggregateFill:        {"aggregate.fill", true},
	opDeviceGet:            {"device.get", true},
	opDeviceFill:           {"device.fill", true},
	opDeviceForget:         {"device.forget", false},
	opLimitCheck:           {"limit.check", true},
	opLimitHit:             {"limit.hit", true},
	opLimitReset:           {"limit.reset", false},
	opCutoffGet:            {"cutoff.get", true},
	opCutoffFill:           {"cutoff.fill", true},
	opCutoffSet:            {"cutoff.set", false},
	opSessionGet:           {"session.get", true},
	opSessionFill:          {"session.fill", true},
	opSessionSet:           {"session.set", false},
	opTokenCheck:           {"token.check", true},
	opSensorRepair:         {"sensor.repair", true},
}

// New returns a Client over rdb (nil: no Redis, every operation degraded).
// Open configures a connection so that Options.Timeout bounds every call;
// New takes rdb as it is.
func New(rdb *goredis.Client, opt Options) *Client {
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if opt.Timeout <= 0 {
		opt.Timeout = Timeout
	}
	if opt.Backoff <= 0 {
		opt.Backoff = time.Second
	}
	return &Client{rdb: rdb, opt: opt}
}

// Open returns a Client for url (redis:// or rediss://host:port/db). It does
// not fail when Redis is unreachable: Redis is a cache, and callers degrade
// to PostgreSQL. Ping reports reachability for those that want to know.
func Open(url string, opt Options) (*Client, error) {
	o, err := goredis.ParseURL(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("redis: REDIS_URL is not a valid redis:// URL")
	}
	c := New(nil, opt)
	// Without ContextTimeoutEnabled the driver ignores a context's deadline
	// once a command is on the wire and waits out ReadTimeout instead.
	o.ContextTimeoutEnabled = true
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = c.opt.Timeout, c.opt.Timeout, c.opt.Timeout
	// Waiting for a free connection is part of the call too.
	o.PoolTimeout = c.opt.Timeout
	// The driver dials again after a refused connection, several times and
	// with a pause between attempts, so a Redis that is down made every call
	// wait out its whole timeout. One attempt: a refusal is an answer, and
	// the driver's own probe (once the pool has seen enough refusals) finds
	// Redis back.
	o.DialerRetries = 1
	// One retry, at once, lets a command that met a connection broken by a
	// Redis restart go again on a fresh one; a pause before it would only
	// spend the call's time.
	o.MaxRetries = 1
	o.MinRetryBackoff, o.MaxRetryBackoff = -1, -1
	c.rdb = goredis.NewClient(o)
	return c, nil
}

// Ping checks the server answers, naming the address when it does not.
func (c *Client) Ping(ctx context.Context) error {
	if c.rdb == nil {
		return ErrNoRedis
	}
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: cannot reach %s (is Redis running? start it with "+
			"`redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no`): %w",
			c.rdb.Options().Addr, err)
	}
	return nil
}

// Close closes the connection.
func (c *Client) Close() error {
	if c.rdb == nil {
		return nil
	}
	return c.rdb.Close()
}

// Degraded returns, by operation name, how many operations of this Client
// were answered without Redis; operations that never were are absent.
func (c *Client) Degraded() map[string]int64 {
	out := map[string]int64{}
	for i := range c.ops {
		if n := c.ops[i].degraded.Load(); n > 0 {
			out[ops[i].name] = n
		}
	}
	return out
}

// The keys of the layout above, one function each.

func (c *Client) latestKey(sensorID string) string {
	return c.opt.Prefix + "sensor:" + sensorID + ":latest"
}
func (c *Client) versionKey(sensorID string) string {
	return c.opt.Prefix + "sensor:" + sensorID + ":ver"
}
func (c *Client) aggregateKey(kind, sum string) string {
	return c.opt.Prefix + "agg:" + kind + ":" + sum
}
func (c *Client) deviceRefKey(r tempwatch.DeviceRef) string {
	return c.opt.Prefix + "device:" + r.String()
}
func (c *Client) deviceHashKey(hash []byte) string {
	return c.opt.Prefix + "devkey:" + hex.EncodeToString(hash)
}
func (c *Client) sensorDevicesKey(sensorID string) string {
	return c.opt.Prefix + "sensor:" + sensorID + ":devices"
}
func (c *Client) devicesGenKey() string      { return c.opt.Prefix + "devices:gen" }
func (c *Client) limitKey(key string) string { return c.opt.Prefix + "rl:" + key }
func (c *Client) cutoffKey(userID string) string {
	return c.opt.Prefix + "user:" + userID + ":cutoff"
}
func (c *Client) sessionKey(sessionID string) string {
	return c.opt.Prefix + "session:" + sessionID + ":state"
}

// do runs fn on the connection within the call timeout. It returns nil when
// fn succeeded; otherwise it reports the failure (rule 2), opens the
// backoff (rule 4) and returns the error. A skippable operation is not sent
// while the backoff lasts. fn must treat goredis.Nil (a missing key) as
// success. A caller that gave up (its own context ended) is no Redis
// failure: its error is returned unreported.
func (c *Client) do(ctx context.Context, o op, fn func(ctx context.Context, rdb *goredis.Client) error) error {
	if c.rdb == nil {
		c.degrade(ctx, o, ErrNoRedis)
		return ErrNoRedis
	}
	if ops[o].skippable && time.Now().UnixNano() < c.downUntil.Load() {
		c.degrade(ctx, o, errBackoff)
		return errBackoff
	}
	cctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	err := fn(cctx, c.rdb)
	if err == nil {
		// Redis answers: the lookups need not wait out the backoff.
		if c.downUntil.Load() != 0 {
			c.downUntil.Store(0)
		}
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	c.downUntil.Store(time.Now().Add(c.opt.Backoff).UnixNano())
	c.degrade(ctx, o, err)
	return fmt.Errorf("redis %s: %w", ops[o].name, err)
}

// degrade counts an operation answered without Redis and writes the
// operation's log record when its window allows.
func (c *Client) degrade(ctx context.Context, o op, err error) {
	s := &c.ops[o]
	s.degraded.Add(1)
	metrics.Add(ctx, metrics.RedisDegraded, 1, metrics.Function(), ops[o].name)
	if c.opt.Log == nil {
		return
	}
	now := time.Now()
	next := s.nextReport.Load()
	if now.UnixNano() < next || !s.nextReport.CompareAndSwap(next, now.Add(c.opt.Backoff).UnixNano()) {
		return
	}
	c.opt.Log.WarnContext(ctx, "redis unavailable", slog.String("op", ops[o].name), slog.String("error", err.Error()))
}
