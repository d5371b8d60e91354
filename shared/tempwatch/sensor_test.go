package tempwatch_test

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func ptr(f float64) *float64 { return &f }

func TestSensorValidate(t *testing.T) {
	valid := func() tempwatch.Sensor {
		return tempwatch.Sensor{ClientID: "6f1c1f1e-0000-4000-8000-000000000001", DeviceID: "dev-1", Name: "n",
			Unit: "C", MinValue: -100, MaxValue: 200, SilenceAfterSeconds: tempwatch.DefaultSilenceAfterSeconds}
	}
	tests := []struct {
		name       string
		change     func(*tempwatch.Sensor)
		wantFields []string
	}{
		{"valid", func(*tempwatch.Sensor) {}, nil},
		{"no client", func(s *tempwatch.Sensor) { s.ClientID = "" }, []string{"client_id"}},
		{"device id with slash", func(s *tempwatch.Sensor) { s.DeviceID = "a/b" }, []string{"device_id"}},
		{"unit K", func(s *tempwatch.Sensor) { s.Unit = "K" }, []string{"unit"}},
		{"min equals max", func(s *tempwatch.Sensor) { s.MinValue = 5; s.MaxValue = 5 }, []string{"max_value"}},
		{"NaN min", func(s *tempwatch.Sensor) { s.MinValue = math.NaN() }, []string{"min_value"}},
		{"thresholds reversed", func(s *tempwatch.Sensor) { s.AlertLow, s.AlertHigh = ptr(9), ptr(3) }, []string{"alert_high"}},
		{"one threshold", func(s *tempwatch.Sensor) { s.AlertHigh = ptr(3) }, nil},
		{"infinite threshold", func(s *tempwatch.Sensor) { s.AlertLow = ptr(math.Inf(-1)) }, []string{"alert_low"}},
		{"alarm settings at their bounds", func(s *tempwatch.Sensor) {
			s.AlarmDelaySeconds, s.AlarmHysteresis, s.SilenceAfterSeconds = 604800, 100, 60
		}, nil},
		{"alarm settings at their other bounds", func(s *tempwatch.Sensor) {
			s.AlarmDelaySeconds, s.AlarmHysteresis, s.SilenceAfterSeconds = 0, 0, 2592000
		}, nil},
		{"negative delay", func(s *tempwatch.Sensor) { s.AlarmDelaySeconds = -1 }, []string{"alarm_delay_seconds"}},
		{"delay over a week", func(s *tempwatch.Sensor) { s.AlarmDelaySeconds = 604801 }, []string{"alarm_delay_seconds"}},
		{"negative hysteresis", func(s *tempwatch.Sensor) { s.AlarmHysteresis = -0.1 }, []string{"alarm_hysteresis"}},
		{"hysteresis over 100", func(s *tempwatch.Sensor) { s.AlarmHysteresis = 100.5 }, []string{"alarm_hysteresis"}},
		{"NaN hysteresis", func(s *tempwatch.Sensor) { s.AlarmHysteresis = math.NaN() }, []string{"alarm_hysteresis"}},
		{"infinite hysteresis", func(s *tempwatch.Sensor) { s.AlarmHysteresis = math.Inf(1) }, []string{"alarm_hysteresis"}},
		{"silence under a minute", func(s *tempwatch.Sensor) { s.SilenceAfterSeconds = 59 }, []string{"silence_after_seconds"}},
		{"silence over 30 days", func(s *tempwatch.Sensor) { s.SilenceAfterSeconds = 2592001 }, []string{"silence_after_seconds"}},
		{"every alarm setting wrong", func(s *tempwatch.Sensor) {
			s.AlarmDelaySeconds, s.AlarmHysteresis, s.SilenceAfterSeconds = -5, -5, 0
		}, []string{"alarm_delay_seconds", "alarm_hysteresis", "silence_after_seconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.change(&s)
			fields := tempwatch.ErrorFields(s.Validate())
			assert.Len(t, fields, len(tt.wantFields), "Validate() fields = %v", fields)
			for _, f := range tt.wantFields {
				assert.Contains(t, fields, f)
			}
		})
	}
}

func TestSensorUpdateDistinguishesAbsentNullAndValue(t *testing.T) {
	s := tempwatch.Sensor{Name: "old", AlertLow: ptr(1), AlertHigh: ptr(9)}
	tests := []struct {
		name     string
		body     string
		wantLow  *float64
		wantHigh *float64
		wantName string
	}{
		{"absent leaves alone", `{"name":"new"}`, ptr(1), ptr(9), "new"},
		{"null clears", `{"alert_low":null}`, nil, ptr(9), "old"},
		{"value sets", `{"alert_high":12.5}`, ptr(1), ptr(12.5), "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u tempwatch.SensorUpdate
			require.NoError(t, json.Unmarshal([]byte(tt.body), &u))
			got := u.Apply(s)
			assert.Equal(t, tt.wantLow, got.AlertLow)
			assert.Equal(t, tt.wantHigh, got.AlertHigh)
			assert.Equal(t, tt.wantName, got.Name)
		})
	}
	var u tempwatch.SensorUpdate
	assert.Error(t, json.Unmarshal([]byte(`{"alert_low":"cold"}`), &u))
}

func TestDeviceKeys(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k, err := tempwatch.NewDeviceKey()
		require.NoError(t, err)
		assert.Regexp(t, regexp.MustCompile(`^twk_[A-Za-z0-9_-]{43}$`), k)
		assert.False(t, seen[k], "NewDeviceKey repeated %s", k)
		seen[k] = true
	}
	// SHA-256 of "abc" (FIPS 180-2 test vector): pgtest and ingest rely on this exact hash.
	assert.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		hex.EncodeToString(tempwatch.HashDeviceKey("abc")))
}

func TestValidateMeasurement(t *testing.T) {
	s := &tempwatch.Sensor{MinValue: -40, MaxValue: 60}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		value      float64
		at         time.Time
		wantFields []string
	}{
		{"inside", 20, now.Add(-time.Hour), nil},
		{"at the bounds", 60, now.Add(59 * time.Minute), nil},
		{"above range", 60.01, now, []string{"value"}},
		{"NaN", math.NaN(), now, []string{"value"}},
		{"zero time", 1, time.Time{}, []string{"measured_at"}},
		{"too far ahead", 1, now.Add(61 * time.Minute), []string{"measured_at"}},
		{"before 2000", -50, time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), []string{"value", "measured_at"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := tempwatch.ErrorFields(tempwatch.ValidateReading(s, tt.value, tt.at, now))
			assert.Len(t, fields, len(tt.wantFields), "ValidateMeasurement fields = %v", fields)
			for _, f := range tt.wantFields {
				assert.Contains(t, fields, f)
			}
		})
	}
}
