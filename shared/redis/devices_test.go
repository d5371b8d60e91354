package redis_test

import (
	"context"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// countingDevices is the real PostgreSQL device store, counting lookups and
// optionally pausing after one (a slow lookup).
type countingDevices struct {
	next  tempwatch.DeviceStore
	mu    sync.Mutex
	calls int
	pause func()
}

func (s *countingDevices) count() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
}

func (s *countingDevices) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *countingDevices) DevicesByRef(ctx context.Context, refs []tempwatch.DeviceRef) (map[tempwatch.DeviceRef]tempwatch.Device, error) {
	s.count()
	return s.next.DevicesByRef(ctx, refs)
}

func (s *countingDevices) DeviceByKeyHash(ctx context.Context, hash []byte) (tempwatch.Device, error) {
	s.count()
	d, err := s.next.DeviceByKeyHash(ctx, hash)
	if s.pause != nil {
		s.pause()
	}
	return d, err
}

func (s *countingDevices) ClientIDsBySlug(ctx context.Context, slugs []string) (map[string]string, error) {
	return s.next.ClientIDsBySlug(ctx, slugs)
}

func TestDeviceStoreKeepsLookupsAndForgetsThemBySensor(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	rdb, prefix := redistest.MustClient(t)
	rc := redis.New(rdb, redis.Options{Prefix: prefix})
	sensor := pgtest.MustSensor(t, db, pgtest.MustClient(t, db, "acme", "UTC"), "cr-1", "k-cr-1")
	other := pgtest.MustSensor(t, db, pgtest.MustClient(t, db, "bolt", "UTC"), "cr-1", "k-bolt")
	pg := &countingDevices{next: postgres.NewDeviceStore(db)}
	s := redis.NewDeviceStore(rc, pg)
	ctx := context.Background()
	ref := tempwatch.DeviceRef{ClientSlug: "acme", DeviceID: "cr-1"}
	otherRef := tempwatch.DeviceRef{ClientSlug: "bolt", DeviceID: "cr-1"}
	unknown := tempwatch.DeviceRef{ClientSlug: "acme", DeviceID: "nope"}

	got, err := s.DevicesByRef(ctx, []tempwatch.DeviceRef{ref, otherRef, unknown})
	require.NoError(t, err)
	assert.Equal(t, sensor, got[ref].SensorID)
	assert.Equal(t, other, got[otherRef].SensorID)
	assert.NotContains(t, got, unknown)
	d, err := s.DeviceByKeyHash(ctx, tempwatch.HashDeviceKey("k-cr-1"))
	require.NoError(t, err)
	assert.Equal(t, sensor, d.SensorID)
	_, err = s.DeviceByKeyHash(ctx, tempwatch.HashDeviceKey("wrong"))
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "the next store's not-found passes through")
	require.Equal(t, 3, pg.Calls())

	// The documented layout: the device by topic and by the hash of its key,
	// listed under the sensor; never the key itself.
	keyEntry := prefix + "devkey:" + hex.EncodeToString(tempwatch.HashDeviceKey("k-cr-1"))
	members, err := rdb.SMembers(ctx, prefix+"sensor:"+sensor+":devices").Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{prefix + "device:acme/cr-1", keyEntry}, members)
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		assert.NotContains(t, k, "k-cr-1")
	}
	ttl, err := rdb.PTTL(ctx, keyEntry).Result()
	require.NoError(t, err)
	assert.InDelta(t, redis.DeviceTTL.Seconds(), ttl.Seconds(), 5)

	got, err = s.DevicesByRef(ctx, []tempwatch.DeviceRef{ref, otherRef})
	require.NoError(t, err)
	assert.Len(t, got, 2)
	_, err = s.DeviceByKeyHash(ctx, tempwatch.HashDeviceKey("k-cr-1"))
	require.NoError(t, err)
	assert.Equal(t, 3, pg.Calls(), "known devices come from Redis")

	s.ForgetDevices(ctx, sensor)
	exists, err := rdb.Exists(ctx, prefix+"device:acme/cr-1", keyEntry, prefix+"sensor:"+sensor+":devices").Result()
	require.NoError(t, err)
	assert.Zero(t, exists, "the sensor's entries and their index are gone")
	got, err = s.DevicesByRef(ctx, []tempwatch.DeviceRef{ref, otherRef})
	require.NoError(t, err)
	assert.Len(t, got, 2)
	assert.Equal(t, 4, pg.Calls(), "the forgotten sensor is asked again, the other is not")
	_, err = s.DeviceByKeyHash(ctx, tempwatch.HashDeviceKey("k-cr-1"))
	require.NoError(t, err)
	assert.Equal(t, 5, pg.Calls())
	assert.Empty(t, rc.Degraded())
}

// TestDeviceFillAfterForgetIsRefused: a lookup that read PostgreSQL before
// a key was rotated, and fills Redis after the rotation's forget, must not
// put the old key back.
func TestDeviceFillAfterForgetIsRefused(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	rc := redistest.MustAdapter(t)
	sensor := pgtest.MustSensor(t, db, pgtest.MustClient(t, db, "acme", "UTC"), "cr-1", "old-key")
	loaded, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow := &countingDevices{next: postgres.NewDeviceStore(db), pause: func() { once.Do(func() { close(loaded); <-release }) }}
	done := make(chan error)
	go func() {
		_, err := redis.NewDeviceStore(rc, slow).DeviceByKeyHash(context.Background(), tempwatch.HashDeviceKey("old-key"))
		done <- err
	}()
	<-loaded
	_, err := db.Exec(context.Background(), `UPDATE sensors SET device_key_hash = $1 WHERE id = $2`, tempwatch.HashDeviceKey("new-key"), sensor)
	require.NoError(t, err)
	redis.NewSensorCaches(rc, nil).ForgetDevices(context.Background(), sensor)
	close(release)
	require.NoError(t, <-done, "the slow lookup answers what it read")

	fresh := &countingDevices{next: postgres.NewDeviceStore(db)}
	_, err = redis.NewDeviceStore(rc, fresh).DeviceByKeyHash(context.Background(), tempwatch.HashDeviceKey("old-key"))
	assert.Equal(t, tempwatch.ENOTFOUND, tempwatch.ErrorCode(err), "the old key must not be back in Redis: %v", err)
	assert.Equal(t, 1, fresh.Calls(), "the lookup went to PostgreSQL")
	assert.Empty(t, rc.Degraded())
}

// TestDeviceStoreWithoutRedis: lookups go to the next store, nothing fails,
// and each operation is counted.
func TestDeviceStoreWithoutRedis(t *testing.T) {
	t.Parallel()
	db := pgtest.MustDB(t)
	sensor := pgtest.MustSensor(t, db, pgtest.MustClient(t, db, "acme", "UTC"), "cr-1", "k")
	rc, err := redis.Open(redistest.DeadURL(t), redis.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	pg := &countingDevices{next: postgres.NewDeviceStore(db)}
	s := redis.NewDeviceStore(rc, pg)
	ctx := context.Background()
	for range 2 {
		d, err := s.DeviceByKeyHash(ctx, tempwatch.HashDeviceKey("k"))
		require.NoError(t, err)
		assert.Equal(t, sensor, d.SensorID)
	}
	s.ForgetDevices(ctx, sensor)
	assert.Equal(t, 2, pg.Calls())
	assert.Equal(t, map[string]int64{"device.get": 2, "device.forget": 1}, rc.Degraded(),
		"no fill is tried without the generation a lookup reads")
}
