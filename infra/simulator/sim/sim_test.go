package sim_test

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/simulator/sim"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func TestDailyCurve(t *testing.T) {
	s := &sim.Sensor{Base: 20, Amplitude: 5}
	r := rand.New(rand.NewPCG(1, 2))
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		hour int
		want float64
	}{
		{"coldest before dawn", 3, 15},
		{"mean mid-morning", 9, 20},
		{"warmest mid-afternoon", 15, 25},
		{"mean in the evening", 21, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Value(day.Add(time.Duration(tt.hour)*time.Hour), r)
			assert.InDelta(t, tt.want, got, 0.01, "Value(%02d:00) = %v, want %v", tt.hour, got, tt.want)
		})
	}
}

func TestFleetHasDistinctSensorsPerClient(t *testing.T) {
	fleet := sim.Fleet(2, 3, 7)
	require.Len(t, fleet, 6)
	topics := map[string]bool{}
	bases := map[float64]bool{}
	for _, s := range fleet {
		topics[s.Topic()] = true
		bases[s.Base] = true
	}
	assert.Len(t, topics, 6)
	assert.Len(t, bases, 6, "every sensor has its own offset")
	assert.Equal(t, "tempwatch/sim-client-2/sensors/sensor-003/readings", fleet[5].Topic())
}

func TestGeneratorMix(t *testing.T) {
	tests := []struct {
		name             string
		mix              sim.Mix
		wantBad, wantDup bool
	}{
		{"clean", sim.Mix{}, false, false},
		{"malformed only", sim.Mix{Malformed: 1}, true, false},
		{"duplicates only", sim.Mix{Duplicate: 1}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := sim.NewGenerator(sim.Fleet(2, 2, 1), tt.mix, 3)
			now := time.Now()
			for i := range 50 {
				msgs := g.Next(now.Add(time.Duration(i) * time.Second))
				assert.Equal(t, tt.wantDup, len(msgs) == 2)
				_, err := tempwatch.ParsePayload(msgs[0].Payload)
				var v map[string]any
				isRange := json.Unmarshal(msgs[0].Payload, &v) == nil && v["value"] == 9000.0
				isAbsurd := err == nil && v["ts"] == "1970-01-01T00:00:00Z"
				assert.Equal(t, tt.wantBad, err != nil || isRange || isAbsurd, "payload %s", msgs[0].Payload)
			}
		})
	}
}
