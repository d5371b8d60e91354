package redis

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// DeviceTTL is how long a device lookup stays in Redis. A forget drops it at
// once; only a forget lost to an outage leaves it, for at most this long.
const DeviceTTL = 5 * time.Minute

var _ tempwatch.DeviceStore = (*DeviceStore)(nil)

// DeviceStore keeps the device lookups of another DeviceStore (PostgreSQL)
// in Redis, for every process that checks devices (ingest, the broker
// authorities). Unknown devices and keys are not kept: a sensor created a
// moment ago is found at once.
//
// Each entry is listed under its sensor, so ForgetDevices drops a sensor's
// entries knowing only its id. A fill lands only if no forget ran since its
// lookup began (the devices:gen counter): a lookup that read PostgreSQL
// before a key was rotated cannot put the old key back after the rotation's
// forget.
type DeviceStore struct {
	c    *Client
	next tempwatch.DeviceStore
}

// NewDeviceStore returns next behind Redis entries on c.
func NewDeviceStore(c *Client, next tempwatch.DeviceStore) *DeviceStore {
	return &DeviceStore{c: c, next: next}
}

// DevicesByRef returns the devices found among refs: from Redis, the rest
// from the next store (whose error it returns), keeping what that found.
func (s *DeviceStore) DevicesByRef(ctx context.Context, refs []tempwatch.DeviceRef) (map[tempwatch.DeviceRef]tempwatch.Device, error) {
	keys := make([]string, len(refs))
	for i, r := range refs {
		keys[i] = s.c.deviceRefKey(r)
	}
	cached, gen, ok := s.get(ctx, keys)
	out := make(map[tempwatch.DeviceRef]tempwatch.Device, len(refs))
	var missing []tempwatch.DeviceRef
	for i, r := range refs {
		if d, hit := cached[keys[i]]; hit {
			out[r] = d
		} else {
			missing = append(missing, r)
		}
	}
	countDevices(ctx, ok, len(out), len(missing))
	if len(missing) == 0 {
		return out, nil
	}
	found, err := s.next.DevicesByRef(ctx, missing)
	if err != nil {
		return nil, err
	}
	fill := make(map[string]tempwatch.Device, len(found))
	for r, d := range found {
		out[r] = d
		fill[s.c.deviceRefKey(r)] = d
	}
	if ok {
		s.fill(ctx, gen, fill)
	}
	return out, nil
}

// DeviceByKeyHash returns the device whose key has this SHA-256: from Redis,
// else from the next store (its ENOTFOUND included), keeping what that found.
func (s *DeviceStore) DeviceByKeyHash(ctx context.Context, hash []byte) (tempwatch.Device, error) {
	key := s.c.deviceHashKey(hash)
	cached, gen, ok := s.get(ctx, []string{key})
	if d, hit := cached[key]; hit {
		countDevices(ctx, ok, 1, 0)
		return d, nil
	}
	countDevices(ctx, ok, 0, 1)
	d, err := s.next.DeviceByKeyHash(ctx, hash)
	if err != nil {
		return d, err
	}
	if ok {
		s.fill(ctx, gen, map[string]tempwatch.Device{key: d})
	}
	return d, nil
}

// countDevices counts device lookups: hits and misses, or all degraded
// when Redis did not answer.
func countDevices(ctx context.Context, ok bool, hits, misses int) {
	if !ok {
		countCache(ctx, "device", "degraded", hits+misses)
		return
	}
	countCache(ctx, "device", "hit", hits)
	countCache(ctx, "device", "miss", misses)
}

// ClientIDsBySlug asks the next store: client ids are not kept in Redis.
func (s *DeviceStore) ClientIDsBySlug(ctx context.Context, slugs []string) (map[string]string, error) {
	return s.next.ClientIDsBySlug(ctx, slugs)
}

// ForgetDevices drops every lookup of the sensors' devices, by topic and by
// key, after a change to them (a new key, device id, unit or range) or their
// deletion is committed.
func (s *DeviceStore) ForgetDevices(ctx context.Context, sensorIDs ...string) {
	s.c.forgetDevices(ctx, sensorIDs)
}

// get returns the entries found among keys and the generation read with
// them; ok is false when Redis did not answer (nothing may be filled then).
func (s *DeviceStore) get(ctx context.Context, keys []string) (found map[string]tempwatch.Device, gen string, ok bool) {
	found = map[string]tempwatch.Device{}
	var vals *goredis.SliceCmd
	var genCmd *goredis.StringCmd
	err := s.c.do(ctx, opDeviceGet, func(ctx context.Context, rdb *goredis.Client) error {
		p := rdb.Pipeline()
		vals = p.MGet(ctx, keys...)
		genCmd = p.Get(ctx, s.c.devicesGenKey())
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
		return vals.Err()
	})
	if err != nil {
		return found, "", false
	}
	for i, v := range vals.Val() {
		str, isStr := v.(string)
		if !isStr {
			continue
		}
		var d tempwatch.Device
		if json.Unmarshal([]byte(str), &d) == nil && d.SensorID != "" {
			found[keys[i]] = d
		}
	}
	gen = genCmd.Val()
	if gen == "" {
		gen = "0"
	}
	return found, gen, true
}

// deviceFillScript: KEYS gen, then (entry, sensor index) pairs; ARGV the
// generation read before the lookup, the lifetime in ms, then one JSON per
// pair. Nothing is written when a forget ran since the generation was read.
var deviceFillScript = goredis.NewScript(`
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
for i = 1, (#KEYS - 1) / 2 do
  local entry, index = KEYS[2 * i], KEYS[2 * i + 1]
  redis.call('SET', entry, ARGV[2 + i], 'PX', ARGV[2])
  redis.call('SADD', index, entry)
  redis.call('PEXPIRE', index, ARGV[2])
end
return 1`)

func (s *DeviceStore) fill(ctx context.Context, gen string, entries map[string]tempwatch.Device) {
	if len(entries) == 0 {
		return
	}
	keys := []string{s.c.devicesGenKey()}
	args := []any{gen, DeviceTTL.Milliseconds()}
	for k, d := range entries {
		b, err := json.Marshal(d)
		if err != nil {
			continue // a Device always encodes
		}
		keys = append(keys, k, s.c.sensorDevicesKey(d.SensorID))
		args = append(args, b)
	}
	_ = s.c.do(context.WithoutCancel(ctx), opDeviceFill, func(ctx context.Context, rdb *goredis.Client) error {
		return deviceFillScript.Run(ctx, rdb, keys, args...).Err()
	})
}

// deviceForgetScript: KEYS gen, then one sensor index each. It bumps the
// generation (so fills in flight are refused) and deletes every entry each
// index lists, and the index. The entries are named by the indexes, not in
// KEYS: tempwatch runs on one Redis node, not a cluster.
var deviceForgetScript = goredis.NewScript(`
redis.call('INCR', KEYS[1])
for i = 2, #KEYS do
  for _, k in ipairs(redis.call('SMEMBERS', KEYS[i])) do redis.call('DEL', k) end
  redis.call('DEL', KEYS[i])
end
return 1`)

func (c *Client) forgetDevices(ctx context.Context, sensorIDs []string) {
	if len(sensorIDs) == 0 {
		return
	}
	keys := []string{c.devicesGenKey()}
	for _, id := range sensorIDs {
		keys = append(keys, c.sensorDevicesKey(id))
	}
	_ = c.do(ctx, opDeviceForget, func(ctx context.Context, rdb *goredis.Client) error {
		return deviceForgetScript.Run(ctx, rdb, keys).Err()
	})
}
