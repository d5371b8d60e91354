package ingest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// countingStore passes lookups to the real store and records them.
type countingStore struct {
	next    tempwatch.DeviceStore
	byRef   [][]tempwatch.DeviceRef
	byHash  int
	bySlug  [][]string
	failAll bool
}

func (c *countingStore) DevicesByRef(ctx context.Context, refs []tempwatch.DeviceRef) (map[tempwatch.DeviceRef]tempwatch.Device, error) {
	c.byRef = append(c.byRef, refs)
	if c.failAll {
		return nil, tempwatch.Errorf(tempwatch.EUNAVAILABLE, "down")
	}
	return c.next.DevicesByRef(ctx, refs)
}

func (c *countingStore) DeviceByKeyHash(ctx context.Context, hash []byte) (tempwatch.Device, error) {
	c.byHash++
	if c.failAll {
		return tempwatch.Device{}, tempwatch.Errorf(tempwatch.EUNAVAILABLE, "down")
	}
	return c.next.DeviceByKeyHash(ctx, hash)
}

func (c *countingStore) ClientIDsBySlug(ctx context.Context, slugs []string) (map[string]string, error) {
	c.bySlug = append(c.bySlug, slugs)
	if c.failAll {
		return nil, tempwatch.Errorf(tempwatch.EUNAVAILABLE, "down")
	}
	return c.next.ClientIDsBySlug(ctx, slugs)
}

func TestDeviceCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	store := &countingStore{next: postgres.NewDeviceStore(e.db)}
	opt := ingest.DeviceCacheOptions{}
	c := ingest.NewDeviceCache(redis.NewDeviceStore(e.rc, store), opt)

	var refs []tempwatch.DeviceRef
	for range 100 {
		refs = append(refs,
			tempwatch.DeviceRef{ClientSlug: "acme", DeviceID: "dev-1"},
			tempwatch.DeviceRef{ClientSlug: "acme", DeviceID: "dev-2"},
			tempwatch.DeviceRef{ClientSlug: "globex", DeviceID: "dev-1"},
			tempwatch.DeviceRef{ClientSlug: "acme", DeviceID: "unknown"})
	}
	got, err := c.Resolve(ctx, refs)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"acme/dev-1": e.acme1, "acme/dev-2": e.acme2, "globex/dev-1": e.globex1}, sensorIDs(got))
	require.Len(t, store.byRef, 1, "one query for all unknown devices of the batch")
	assert.Len(t, store.byRef[0], 4, "each device asked once")
	assert.Equal(t, "F", got[tempwatch.DeviceRef{ClientSlug: "acme", DeviceID: "dev-2"}].Unit)
	assert.Equal(t, 85.0, got[tempwatch.DeviceRef{ClientSlug: "acme", DeviceID: "dev-1"}].MaxValue)

	_, err = c.Resolve(ctx, refs[:3])
	require.NoError(t, err)
	assert.Len(t, store.byRef, 1, "known devices come from the process cache")

	// Another process (empty local cache) finds them in Redis, with
	// PostgreSQL down.
	down := &countingStore{failAll: true}
	other := ingest.NewDeviceCache(redis.NewDeviceStore(e.rc, down), opt)
	got, err = other.Resolve(ctx, refs[:3])
	require.NoError(t, err)
	assert.Len(t, got, 3)
	assert.Empty(t, down.byRef)
	// An unknown device is not cached: it goes to PostgreSQL, whose failure
	// is the caller's error.
	_, err = other.Resolve(ctx, refs[:4])
	assert.Error(t, err)

	// Device keys: found by hash, then cached; a wrong key is ENOTFOUND.
	d, err := c.ByKey(ctx, e.acme1Key)
	require.NoError(t, err)
	assert.Equal(t, e.acme1, d.SensorID)
	d, err = other.ByKey(ctx, e.acme1Key)
	require.NoError(t, err, "from Redis while PostgreSQL is down")
	assert.Equal(t, e.acme1, d.SensorID)
	_, err = c.ByKey(ctx, "wrong")
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err))
	asked := store.byHash
	_, err = c.ByKey(ctx, "wrong")
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err))
	assert.Equal(t, asked, store.byHash, "a wrong key asked again costs no query (a device's reconnect loop)")
	// Redis never holds the key itself (it holds its hash: shared/redis).
	keys, err := e.rdb.Keys(ctx, e.prefix+"*").Result()
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		assert.NotContains(t, k, e.acme1Key)
		v, _ := e.rdb.Dump(ctx, k).Result()
		assert.NotContains(t, v, e.acme1Key)
	}

	// Forget drops both levels: the next lookup asks PostgreSQL again.
	c.Forget(ctx, []tempwatch.Device{got[refs[0]]})
	_, err = c.Resolve(ctx, refs[:1])
	require.NoError(t, err)
	assert.Len(t, store.byRef, 2)
}

func sensorIDs(m map[tempwatch.DeviceRef]tempwatch.Device) map[string]string {
	out := map[string]string{}
	for r, d := range m {
		out[r.String()] = d.SensorID
	}
	return out
}

// ClientIDs names the clients of dead letters from unknown devices: one
// query per call for what the process has not seen, known slugs cached,
// unknown ones not (a client created a moment ago is found at once).
func TestDeviceCacheClientIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	store := &countingStore{next: postgres.NewDeviceStore(e.db)}
	c := ingest.NewDeviceCache(redis.NewDeviceStore(e.rc, store), ingest.DeviceCacheOptions{})
	var acme, globex string
	require.NoError(t, e.db.QueryRow(ctx, `SELECT id FROM clients WHERE slug = 'acme'`).Scan(&acme))
	require.NoError(t, e.db.QueryRow(ctx, `SELECT id FROM clients WHERE slug = 'globex'`).Scan(&globex))

	got, err := c.ClientIDs(ctx, []string{"acme", "nope", "acme", "globex", "nope"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"acme": acme, "globex": globex}, got)
	require.Len(t, store.bySlug, 1)
	assert.ElementsMatch(t, []string{"acme", "nope", "globex"}, store.bySlug[0], "each slug asked once")

	got, err = c.ClientIDs(ctx, []string{"acme", "globex"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"acme": acme, "globex": globex}, got)
	assert.Len(t, store.bySlug, 1, "known slugs come from the process cache")

	newcomer := pgtest.MustClient(t, e.db, "nope", "")
	got, err = c.ClientIDs(ctx, []string{"acme", "nope"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"acme": acme, "nope": newcomer}, got, "an unknown slug was not cached")
	require.Len(t, store.bySlug, 2)
	assert.Equal(t, []string{"nope"}, store.bySlug[1])

	store.failAll = true
	_, err = c.ClientIDs(ctx, []string{"other"})
	assert.Error(t, err, "a store failure is the caller's error")
}
