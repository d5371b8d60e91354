// Package sim generates and publishes realistic sensor readings: per sensor a
// daily temperature curve (coldest before dawn, warmest mid-afternoon), an
// offset of its own, and noise.
package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Sensor is one simulated device.
type Sensor struct {
	ClientSlug string
	DeviceID   string
	Base       float64 // daily mean, °C
	Amplitude  float64 // half the day's swing, °C
	Noise      float64 // standard deviation of the noise, °C
	// Key is the sensor's device key, its MQTT password (set by
	// API.Setup; empty: the broker takes anonymous clients).
	Key string
	seq int64
}

// Username is the sensor's MQTT username, and the client id it must use.
func (s *Sensor) Username() string { return s.ClientSlug + "/" + s.DeviceID }

// Topic is where the sensor publishes.
func (s *Sensor) Topic() string {
	return "tempwatch/" + s.ClientSlug + "/sensors/" + s.DeviceID + "/readings"
}

// Value is the sensor's temperature at t, with noise drawn from r.
func (s *Sensor) Value(t time.Time, r *rand.Rand) float64 {
	day := float64(t.UTC().Hour()*3600+t.UTC().Minute()*60+t.UTC().Second()) / 86400
	// Peak at 15:00, trough at 03:00.
	v := s.Base + s.Amplitude*math.Sin(2*math.Pi*(day-0.375))
	return math.Round((v+r.NormFloat64()*s.Noise)*100) / 100
}

// Fleet builds clients×perClient sensors named client-<i>/sensor-<j>, each with
// offsets of its own, deterministic for a seed.
func Fleet(clients, perClient int, seed uint64) []*Sensor {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out []*Sensor
	for c := range clients {
		climate := 8 + r.Float64()*14 // the client's site: 8–22 °C mean
		for s := range perClient {
			out = append(out, &Sensor{
				ClientSlug: ClientSlug(c),
				DeviceID:   fmt.Sprintf("sensor-%03d", s+1),
				Base:       climate + r.NormFloat64()*1.5,
				Amplitude:  2 + r.Float64()*5,
				Noise:      0.05 + r.Float64()*0.2,
			})
		}
	}
	return out
}

// ClientSlug is the slug of simulated client number i.
func ClientSlug(i int) string { return fmt.Sprintf("sim-client-%d", i+1) }

// Message is one payload ready to publish.
type Message struct {
	Topic   string
	Payload []byte
}

// Mix says how much bad traffic to send along with the good.
type Mix struct {
	Malformed float64 // share of messages that are not valid readings
	Duplicate float64 // share of messages sent twice
}

// Generator turns a fleet into a stream of messages.
type Generator struct {
	Fleet []*Sensor
	Mix   Mix
	rand  *rand.Rand
	next  int
}

// NewGenerator returns a generator over fleet.
func NewGenerator(fleet []*Sensor, mix Mix, seed uint64) *Generator {
	return &Generator{Fleet: fleet, Mix: mix, rand: rand.New(rand.NewPCG(seed, 1))}
}

var malformed = []string{
	`{"value":`,              // not JSON
	`{"temperature":"warm"}`, // not a number
	`{"value":1e999}`,        // not finite
	`{"unit":"C"}`,           // no value
	`{"value":20,"ts":"1970-01-01T00:00:00Z"}`, // absurd timestamp
	`{"value":9000}`, // outside the physical range
}

// Next returns the messages for one tick at time t of the round-robin
// sensor: one reading, sometimes malformed, sometimes twice.
func (g *Generator) Next(t time.Time) []Message {
	s := g.Fleet[g.next%len(g.Fleet)]
	g.next++
	if g.rand.Float64() < g.Mix.Malformed {
		return []Message{{Topic: s.Topic(), Payload: []byte(malformed[g.rand.IntN(len(malformed))])}}
	}
	s.seq++
	b, _ := json.Marshal(map[string]any{
		"value":    s.Value(t, g.rand),
		"ts":       t.UTC().Format(time.RFC3339Nano),
		"unit":     "C",
		"seq":      s.seq,
		"battery":  math.Round((3.0+g.rand.Float64()*0.6)*100) / 100,
		"humidity": math.Round(30 + g.rand.Float64()*40),
	})
	m := Message{Topic: s.Topic(), Payload: b}
	if g.rand.Float64() < g.Mix.Duplicate {
		return []Message{m, m}
	}
	return []Message{m}
}

// Publisher publishes one message.
type Publisher func(ctx context.Context, m Message) error

// Run publishes at rate messages per second for d (0: until ctx ends) and
// returns how many it published.
func Run(ctx context.Context, g *Generator, rate float64, d time.Duration, publish Publisher) (int, error) {
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	sent := 0
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				return sent, nil
			case <-time.After(wait):
			}
		} else if ctx.Err() != nil {
			return sent, nil
		}
		// Readings of one sensor are at least a millisecond apart so the
		// natural key (sensor, device time) never merges two of them.
		for _, m := range g.Next(start.Add(time.Duration(i) * interval)) {
			if err := publish(ctx, m); err != nil {
				if ctx.Err() != nil {
					return sent, nil
				}
				return sent, err
			}
			sent++
		}
	}
}
