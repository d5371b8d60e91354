package ingest

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// DeviceCacheOptions configures a DeviceCache. Zero values take the defaults.
type DeviceCacheOptions struct {
	Size     int           // in-process entries, default 10,000
	LocalTTL time.Duration // in-process lifetime, default 30 s
}

// SharedDevices is what a DeviceCache asks for the devices its process does
// not hold: a device store whose lookups every process shares and that can
// drop them (redis.DeviceStore over PostgreSQL).
type SharedDevices interface {
	tempwatch.DeviceStore
	// ForgetDevices drops the shared lookups of the sensors' devices.
	ForgetDevices(ctx context.Context, sensorIDs ...string)
}

// DeviceCache resolves devices through an in-process LRU, then the shared
// store (Redis, then PostgreSQL) — one lookup for all of a batch's unknown
// devices. Unknown devices are not cached, so a sensor created a moment ago
// is found at once (unknown keys are: a new sensor's key is new too).
//
// A writer that changes a sensor's range, unit or key, or deletes it, drops
// the shared entries (redis.SensorCaches.ForgetDevices); the in-process copy
// lives LocalTTL, which bounds how long an old key still authenticates.
type DeviceCache struct {
	store SharedDevices
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

// NewDeviceCache returns a cache over store.
func NewDeviceCache(store SharedDevices, opt DeviceCacheOptions) *DeviceCache {
	if opt.Size <= 0 {
		opt.Size = 10_000
	}
	if opt.LocalTTL <= 0 {
		opt.LocalTTL = 30 * time.Second
	}
	return &DeviceCache{store: store, opt: opt,
		local:       expirable.NewLRU[string, tempwatch.Device](opt.Size, nil, opt.LocalTTL),
		clients:     expirable.NewLRU[string, string](1000, nil, opt.LocalTTL),
		unknownKeys: expirable.NewLRU[string, struct{}](opt.Size, nil, opt.LocalTTL)}
}

// The keys of the in-process LRU.
func refKey(r tempwatch.DeviceRef) string { return "device:" + r.String() }
func hashKey(hash []byte) string          { return "devkey:" + hex.EncodeToString(hash) }

// Resolve returns the known devices among refs; unknown ones are absent.
// Only a store failure is an error.
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
	found, err := c.store.DevicesByRef(ctx, missing)
	if err != nil {
		return nil, err
	}
	for r, d := range found {
		out[r] = d
		c.local.Add(refKey(r), d)
	}
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
	d, err := c.store.DeviceByKeyHash(ctx, sum)
	if err != nil {
		if tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND {
			c.unknownKeys.Add(k, struct{}{})
		}
		return d, err
	}
	c.local.Add(k, d)
	return d, nil
}

// Forget drops devices from the process and the shared store, after
// PostgreSQL said one of them no longer exists.
func (c *DeviceCache) Forget(ctx context.Context, devices []tempwatch.Device) {
	ids := make([]string, 0, len(devices))
	for _, d := range devices {
		c.local.Remove(refKey(d.Ref()))
		ids = append(ids, d.SensorID)
	}
	c.store.ForgetDevices(ctx, ids...)
}
