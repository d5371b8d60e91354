package tempwatch

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// maxOwners bounds the memory of an Owners cache; past it the map restarts.
const maxOwners = 50_000

// Owners keeps sensor owners (client id, client time zone) in process memory
// for a short TTL, so a hot read path (readings, statistics) does not ask
// PostgreSQL who owns a sensor on every request. A sensor never moves to another client; a deleted
// sensor or a changed client zone shows after at most the TTL.
type Owners struct {
	load    func(context.Context, string) (SensorOwner, error)
	ttl     time.Duration
	flights singleflight.Group

	mu sync.Mutex
	m  map[string]ownerEntry
}

type ownerEntry struct {
	o   SensorOwner
	exp time.Time
}

// OwnerTTL is how long the read paths keep a sensor's owner in process
// memory: a sensor never changes client, and a deleted one is found missing
// by the query that follows.
const OwnerTTL = 10 * time.Second

// NewOwners returns an Owners cache over load, keeping entries for ttl
// (0: no caching).
func NewOwners(load func(context.Context, string) (SensorOwner, error), ttl time.Duration) *Owners {
	return &Owners{load: load, ttl: ttl, m: map[string]ownerEntry{}}
}

// Get returns the owner of sensorID.
func (c *Owners) Get(ctx context.Context, sensorID string) (SensorOwner, error) {
	if c.ttl > 0 {
		c.mu.Lock()
		e, ok := c.m[sensorID]
		c.mu.Unlock()
		if ok && time.Now().Before(e.exp) {
			return e.o, nil
		}
	}
	v, err, _ := c.flights.Do(sensorID, func() (any, error) { return c.load(ctx, sensorID) })
	if err != nil {
		return SensorOwner{}, err
	}
	o := v.(SensorOwner)
	if c.ttl > 0 {
		c.mu.Lock()
		if len(c.m) >= maxOwners {
			c.m = map[string]ownerEntry{}
		}
		c.m[sensorID] = ownerEntry{o: o, exp: time.Now().Add(c.ttl)}
		c.mu.Unlock()
	}
	return o, nil
}
