package tempwatch_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func TestParsePayload(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	tests := []struct {
		name    string
		in      string
		want    tempwatch.Payload
		wantErr string
	}{
		{name: "value only", in: `{"value": 21.5}`, want: tempwatch.Payload{Value: 21.5}},
		{name: "temperature alias", in: `{"temperature": -3}`, want: tempwatch.Payload{Value: -3}},
		{name: "null alias ignored", in: `{"value": 1, "temperature": null}`, want: tempwatch.Payload{Value: 1}},
		{name: "rfc3339 with nanos cut to micros", in: `{"value": 1, "ts": "2026-03-04T05:06:07.123456789Z"}`, want: tempwatch.Payload{Value: 1, Time: ts}},
		{name: "rfc3339 offset", in: `{"value": 1, "timestamp": "2026-03-04T10:36:07.123456+05:30"}`, want: tempwatch.Payload{Value: 1, Time: ts}},
		{name: "unix seconds fractional", in: `{"value": 1, "ts": 1772600767.5}`, want: tempwatch.Payload{Value: 1, Time: time.Unix(1772600767, 5e8).UTC()}},
		{name: "unix milliseconds", in: `{"value": 1, "ts": 1772600767123}`, want: tempwatch.Payload{Value: 1, Time: time.UnixMilli(1772600767123).UTC()}},
		{name: "fahrenheit", in: `{"value": 212, "unit": "f"}`, want: tempwatch.Payload{Value: 212, Unit: "F"}},
		{name: "celsius word", in: `{"value": 2, "unit": "Celsius"}`, want: tempwatch.Payload{Value: 2, Unit: "C"}},
		{name: "seq and extras", in: `{"value": 2, "seq": 42, "humidity": 40, "battery": {"v": 3.1}}`, want: tempwatch.Payload{Value: 2, Seq: 42, HasSeq: true}},
		{name: "not json", in: `hello`, wantErr: "payload is not JSON"},
		{name: "truncated", in: `{"value": 1`, wantErr: "payload is not JSON"},
		{name: "empty", in: ``, wantErr: "payload is not JSON"},
		{name: "array", in: `[1]`, wantErr: "payload must be a JSON object"},
		{name: "bare number", in: `21.5`, wantErr: "payload must be a JSON object"},
		{name: "missing value", in: `{"ts": 1772600767}`, wantErr: "value is missing"},
		{name: "null value", in: `{"value": null}`, wantErr: "value is missing"},
		{name: "string value", in: `{"value": "21.5"}`, wantErr: "value must be a number"},
		{name: "NaN string", in: `{"value": "NaN"}`, wantErr: "value must be a number"},
		{name: "bool value", in: `{"temperature": true}`, wantErr: "temperature must be a number"},
		{name: "overflow to inf", in: `{"value": 1e400}`, wantErr: "value must be a finite number"},
		{name: "negative overflow", in: `{"value": -1e400}`, wantErr: "value must be a finite number"},
		{name: "both aliases", in: `{"value": 1, "temperature": 1}`, wantErr: "give value or temperature, not both"},
		{name: "kelvin", in: `{"value": 300, "unit": "K"}`, wantErr: `unit "K" is not supported`},
		{name: "unit not string", in: `{"value": 3, "unit": 1}`, wantErr: "unit must be a string"},
		{name: "seq fraction", in: `{"value": 3, "seq": 1.5}`, wantErr: "seq must be an integer"},
		{name: "ts 1970", in: `{"value": 3, "ts": 0}`, wantErr: "ts is absurd"},
		{name: "ts year 3000", in: `{"value": 3, "ts": "3000-01-01T00:00:00Z"}`, wantErr: "ts is absurd"},
		{name: "ts without zone", in: `{"value": 3, "ts": "2026-03-04T05:06:07"}`, wantErr: "is not an RFC 3339 time"},
		{name: "ts bool", in: `{"value": 3, "ts": true}`, wantErr: "ts must be an RFC 3339 string or Unix seconds"},
		{name: "too large", in: `{"value": 3, "x": "` + strings.Repeat("a", tempwatch.MaxPayloadBytes) + `"}`, wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tempwatch.ParsePayload([]byte(tt.in))
			if tt.wantErr != "" {
				require.Error(t, err, "ParsePayload(%s) = %+v, want error", tt.in, got)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.True(t, got.Time.Equal(tt.want.Time), "Time = %v, want %v", got.Time, tt.want.Time)
			got.Time, tt.want.Time = time.Time{}, time.Time{}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPayloadCelsius(t *testing.T) {
	tests := []struct {
		name        string
		p           tempwatch.Payload
		defaultUnit string
		want        float64
	}{
		{"celsius given", tempwatch.Payload{Value: 20, Unit: "C"}, "F", 20},
		{"fahrenheit given", tempwatch.Payload{Value: 212, Unit: "F"}, "C", 100},
		{"sensor default fahrenheit", tempwatch.Payload{Value: 32}, "F", 0},
		{"no unit anywhere", tempwatch.Payload{Value: 7}, "", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.want, tt.p.Celsius(tt.defaultUnit), 1e-9)
		})
	}
}

func TestParseTopic(t *testing.T) {
	tests := []struct {
		name, topic string
		want        tempwatch.DeviceRef
		wantErr     string
	}{
		{name: "ok", topic: "tempwatch/acme/sensors/dev-1.a_B/readings", want: tempwatch.DeviceRef{ClientSlug: "acme", DeviceID: "dev-1.a_B"}},
		{name: "wrong root", topic: "other/acme/sensors/d/readings", wantErr: "topic is not"},
		{name: "too short", topic: "tempwatch/acme/sensors/d", wantErr: "topic is not"},
		{name: "too long", topic: "tempwatch/acme/sensors/d/readings/x", wantErr: "topic is not"},
		{name: "trailing slash", topic: "tempwatch/acme/sensors/d/readings/", wantErr: "topic is not"},
		{name: "wrong kind", topic: "tempwatch/acme/devices/d/readings", wantErr: "topic is not"},
		{name: "upper slug", topic: "tempwatch/Acme/sensors/d/readings", wantErr: "client slug"},
		{name: "empty device", topic: "tempwatch/acme/sensors//readings", wantErr: "device id"},
		{name: "wildcard device", topic: "tempwatch/acme/sensors/+/readings", wantErr: "device id"},
		{name: "empty", topic: "", wantErr: "topic is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tempwatch.ParseTopic(tt.topic)
			if tt.wantErr != "" {
				require.Error(t, err, "ParseTopic(%q) = %v, want error", tt.topic, got)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.topic, got.Topic())
		})
	}
}

// FuzzParsePayload checks that no input panics the parser and that whatever
// it accepts has a finite value, a sane time and a known unit.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{`{"value":21.5}`, `{"temperature":-1e308,"unit":"F"}`, `{"value":1,"ts":1772600767123}`,
		`{"value":1,"ts":"2026-03-04T05:06:07Z","seq":9}`, `{"value":"NaN"}`, `{"value":1e999}`, `[]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := tempwatch.ParsePayload(b)
		if err != nil {
			return
		}
		for _, unit := range []string{"C", "F"} {
			if c := p.Celsius(unit); math.IsNaN(c) || math.IsInf(c, 0) {
				t.Fatalf("ParsePayload(%q) accepted non-finite value %v (°C %v)", b, p.Value, c)
			}
		}
		if p.Unit != "" && p.Unit != tempwatch.Celsius && p.Unit != tempwatch.Fahrenheit {
			t.Fatalf("ParsePayload(%q) unit = %q", b, p.Unit)
		}
		if !p.Time.IsZero() && (p.Time.Before(tempwatch.MinTimestamp) || !p.Time.Before(tempwatch.MaxTimestamp)) {
			t.Fatalf("ParsePayload(%q) time = %v, outside the sane range", b, p.Time)
		}
	})
}
