package ingest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// DeviceCacheOptions configures a DeviceCache. Zero values take the defaults.
type DeviceCacheOptions struct {
	Prefix   string        // Redis key prefix, default "tw:"
	Size     int           // in-process entries, default 10,000
	LocalTTL time.Duration // in-process lifetime, default 30 s
	RedisTTL time.Duration // Redis lifetime, default 5 min
	Timeout  time.Duration // per Redis call, default 200 ms
}

// DeviceCache resolves devices through an in-process LRU, then Redis, then
// PostgreSQL — one query for all of a batch's unknown devices. Unknown
// devices are not cached, so a sensor created a moment ago is found at once
// (unknown keys are: a new sensor's key is new too).
//
// Redis keys (under Prefix): ingest:device:<slug>/<device-id> and
// ingest:devkey:<hex SHA-256 of the device key>, each the device as JSON.
// A writer that changes a sensor's range, unit or key, or deletes it, may
// DEL them; otherwise they expire after RedisTTL (and the in-process copy
// after LocalTTL), which bounds how long an old key still authenticates.
type DeviceCache struct {
	store tempwatch.DeviceStore
	rdb   *goredis.Client
	opt   DeviceCacheOptions
	local *expirable.LRU[string, tempwatch.Device]
	// clients maps slugs to client ids, for the dead letters of messages
	// from devices it does not know.
	clients *expirable.LRU[string, string]
	// unknownKeys holds the hashes of keys PostgreSQL found no sensor for,
	// so a device retrying with a wrong or rotated key (a reconnect loop)
	// costs no query each time. A key is random and only ever issued new,
	// so no key can be asked for before it exists: caching its absence
	// never refuses a sensor created since.
	unknownKeys *expirable.LRU[string, struct{}]
}

// NewDeviceCache returns a cache over store; rdb may be nil (no Redis).
func NewDeviceCache(store tempwatch.DeviceStore, rdb *goredis.Client, opt DeviceCacheOptions) *DeviceCache {
	if opt.Prefix == "" {
		opt.Prefix = "tw:"
	}
	if opt.Size <= 0 {
		opt.Size = 10_000
	}
	if opt.LocalTTL <= 0 {
		opt.LocalTTL = 30 * time.Second
	}
	if opt.RedisTTL <= 0 {
		opt.RedisTTL = 5 * time.Minute
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 200 * time.Millisecond
	}
	return &DeviceCache{store: store, rdb: rdb, opt: opt,
		local:       expirable.NewLRU[string, tempwatch.Device](opt.Size, nil, opt.LocalTTL),
		clients:     expirable.NewLRU[string, string](1000, nil, opt.LocalTTL),
		unknownKeys: expirable.NewLRU[string, struct{}](opt.Size, nil, opt.LocalTTL)}
}

func refKey(r tempwatch.DeviceRef) string { return "device:" + r.String() }
func hashKey(hash []byte) string          { return "devkey:" + hex.EncodeToString(hash) }

// Resolve returns the known devices among refs; unknown ones are absent.
// Only a PostgreSQL failure is an error; Redis failures fall through to it.
func (c *DeviceCache) Resolve(ctx context.Context, refs []tempwatch.DeviceRef) (map[tempwatch.DeviceRef]tempwatch.Device, error) {
	out := make(map[tempwatch.DeviceRef]tempwatch.Device, len(refs))
	var missing []tempwatch.DeviceRef
	seen := make(map[tempwatch.DeviceRef]bool, len(refs))
	for _, r := range refs {
		if seen[r] {
			continue
		}
		seen[r] = true
		if d, ok := c.local.Get(refKey(r)); ok {
			out[r] = d
		} else {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	keys := make([]string, len(missing))
	for i, r := range missing {
		keys[i] = refKey(r)
	}
	found := c.fromRedis(ctx, keys)
	var query []tempwatch.DeviceRef
	for i, r := range missing {
		if d, ok := found[keys[i]]; ok {
			out[r] = d
			c.local.Add(keys[i], d)
		} else {
			query = append(query, r)
		}
	}
	if len(query) == 0 {
		return out, nil
	}
	fromDB, err := c.store.DevicesByRef(ctx, query)
	if err != nil {
		return nil, err
	}
	fill := make(map[string]tempwatch.Device, len(fromDB))
	for r, d := range fromDB {
		out[r] = d
		c.local.Add(refKey(r), d)
		fill[refKey(r)] = d
	}
	c.toRedis(ctx, fill)
	return out, nil
}

// ClientIDs returns the ids of the clients found among slugs, by slug: from
// the in-process cache, the rest in one store query. Unknown slugs are not
// cached (a client created a moment ago is found at once) and are absent.
func (c *DeviceCache) ClientIDs(ctx context.Context, slugs []string) (map[string]string, error) {
	out := make(map[string]string, len(slugs))
	var query []string
	seen := make(map[string]bool, len(slugs))
	for _, slug := range slugs {
		if seen[slug] {
			continue
		}
		seen[slug] = true
		if id, ok := c.clients.Get(slug); ok {
			out[slug] = id
		} else {
			query = append(query, slug)
		}
	}
	if len(query) == 0 {
		return out, nil
	}
	found, err := c.store.ClientIDsBySlug(ctx, query)
	if err != nil {
		return out, err
	}
	for slug, id := range found {
		out[slug] = id
		c.clients.Add(slug, id)
	}
	return out, nil
}

// ByKey returns the device whose key is key, or the store's ENOTFOUND.
func (c *DeviceCache) ByKey(ctx context.Context, key string) (tempwatch.Device, error) {
	sum := tempwatch.HashDeviceKey(key)
	k := hashKey(sum)
	if d, ok := c.local.Get(k); ok {
		return d, nil
	}
	if c.unknownKeys.Contains(k) {
		return tempwatch.Device{}, tempwatch.Errorf(tempwatch.ENOTFOUND, "Unknown device key.")
	}
	if d, ok := c.fromRedis(ctx, []string{k})[k]; ok {
		c.local.Add(k, d)
		return d, nil
	}
	d, err := c.store.DeviceByKeyHash(ctx, sum)
	if err != nil {
		if tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND {
			c.unknownKeys.Add(k, struct{}{})
		}
		return d, err
	}
	c.local.Add(k, d)
	c.toRedis(ctx, map[string]tempwatch.Device{k: d})
	return d, nil
}

// Forget drops refs from both cache levels, after PostgreSQL said one of
// them no longer exists.
func (c *DeviceCache) Forget(ctx context.Context, refs []tempwatch.DeviceRef) {
	keys := make([]string, 0, len(refs))
	for _, r := range refs {
		c.local.Remove(refKey(r))
		keys = append(keys, c.opt.Prefix+"ingest:"+refKey(r))
	}
	if c.rdb == nil || len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	c.rdb.Del(ctx, keys...)
}

func (c *DeviceCache) fromRedis(ctx context.Context, keys []string) map[string]tempwatch.Device {
	out := map[string]tempwatch.Device{}
	if c.rdb == nil {
		return out
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = c.opt.Prefix + "ingest:" + k
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	vals, err := c.rdb.MGet(ctx, full...).Result()
	if err != nil {
		return out
	}
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		var d tempwatch.Device
		if json.Unmarshal([]byte(s), &d) == nil && d.SensorID != "" {
			out[keys[i]] = d
		}
	}
	return out
}

func (c *DeviceCache) toRedis(ctx context.Context, devices map[string]tempwatch.Device) {
	if c.rdb == nil || len(devices) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	pipe := c.rdb.Pipeline()
	for k, d := range devices {
		b, _ := json.Marshal(d)
		pipe.Set(ctx, c.opt.Prefix+"ingest:"+k, b, c.opt.RedisTTL)
	}
	_, _ = pipe.Exec(ctx)
}
