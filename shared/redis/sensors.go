package redis

import "context"

// SensorCaches are what the sensors function reads through and drops after
// each committed change: the read cache (the latest reading shown with each
// sensor; a deleted sensor's readings and aggregates) and the device lookups
// of DeviceStore (a rotated key, a changed device id, unit or range, a
// deleted sensor).
type SensorCaches struct{ *Cache }

// NewSensorCaches returns the caches over c, reading latest readings missing
// from Redis from store.
func NewSensorCaches(c *Client, store LatestStore) *SensorCaches {
	return &SensorCaches{Cache: NewCache(c, CacheOptions{Store: store})}
}

// ForgetDevices drops every lookup of the sensors' devices (see DeviceStore).
func (s *SensorCaches) ForgetDevices(ctx context.Context, sensorIDs ...string) {
	s.c.forgetDevices(ctx, sensorIDs)
}
