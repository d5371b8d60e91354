package tempwatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Payload format (MQTT message body and each HTTP ingest item):
//
//	{"value": 21.5, "ts": "2026-01-02T03:04:05.123Z", "unit": "C", "seq": 42, "humidity": 40}
//
//   - value (or its alias temperature; giving both is an error): a JSON number,
//     finite. Strings, booleans and null are refused.
//   - ts (or its alias timestamp), optional: an RFC 3339 string with a zone
//     ("Z" or an offset), or a JSON number of Unix seconds (fractions allowed);
//     a number of 1e11 or more is read as Unix milliseconds. Times before
//     2000-01-01 or from 2100-01-01 on are absurd and refused. Without it the
//     receive time is used — a device that wants redelivery to be harmless
//     must send its own timestamp, since the natural key is (sensor, time).
//   - unit, optional: "C"/"F" (also "celsius"/"fahrenheit", any case). Absent,
//     the sensor's configured unit applies. °F is converted to °C.
//   - seq, optional: an integer sequence number.
//   - any other field is kept untouched in the raw payload in MongoDB.
//
// The body must be a JSON object.

// MaxPayloadBytes caps one message's payload.
const MaxPayloadBytes = 64 << 10

// Units a payload may give.
const (
	Celsius    = "C"
	Fahrenheit = "F"
)

// Bounds outside which a device timestamp is absurd whatever the configured
// age window: clocks reset to 1970, or garbage.
var (
	MinTimestamp = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTimestamp = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Payload is a parsed device payload. Value is as sent, in Unit.
type Payload struct {
	Value float64
	// Unit is Celsius, Fahrenheit, or "" when the payload does not say.
	Unit string
	// Time is the device timestamp; zero when absent.
	Time time.Time
	// Seq is the device sequence number when HasSeq.
	Seq    int64
	HasSeq bool
}

// Celsius returns the value in °C, taking unit as the unit when the payload
// names none.
func (p Payload) Celsius(defaultUnit string) float64 {
	unit := p.Unit
	if unit == "" {
		unit = defaultUnit
	}
	if unit == Fahrenheit {
		return (p.Value - 32) / 9 * 5 // dividing first keeps ±1.7e308 finite
	}
	return p.Value
}

// ParsePayload parses and checks one device payload. Its errors name the
// problem in words fit for a dead letter's reason.
func ParsePayload(b []byte) (Payload, error) {
	var p Payload
	if len(b) > MaxPayloadBytes {
		return p, fmt.Errorf("payload is larger than %d bytes", MaxPayloadBytes)
	}
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		if !json.Valid(b) {
			return p, errors.New("payload is not JSON")
		}
		return p, errors.New("payload must be a JSON object")
	}
	var f payloadFields
	if err := f.decode(b); err != nil {
		return p, errors.New("payload is not JSON")
	}

	raw, name, err := oneOf(f.Value, f.Temperature, "value", "temperature")
	if err != nil {
		return p, err
	}
	if raw == nil {
		return p, errors.New("value is missing")
	}
	if p.Value, err = finite(raw, name); err != nil {
		return p, err
	}

	if raw, name, err = oneOf(f.TS, f.Timestamp, "ts", "timestamp"); err != nil {
		return p, err
	}
	if raw != nil {
		if p.Time, err = parseTime(raw, name); err != nil {
			return p, err
		}
	}

	if raw := f.Unit; raw != nil {
		s, err := jsonString(raw)
		if err != nil {
			return p, errors.New("unit must be a string")
		}
		switch strings.ToLower(s) {
		case "c", "celsius":
			p.Unit = Celsius
		case "f", "fahrenheit":
			p.Unit = Fahrenheit
		default:
			return p, fmt.Errorf("unit %q is not supported (use C or F)", Truncate(s, 16))
		}
	}

	if raw := f.Seq; raw != nil {
		n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
		if err != nil {
			return p, errors.New("seq must be an integer")
		}
		p.Seq, p.HasSeq = n, true
	}
	return p, nil
}

// payloadFields are the members ParsePayload reads, as raw JSON (nil when
// absent); it ignores the others.
type payloadFields struct {
	Value       jsontext.Value `json:"value"`
	Temperature jsontext.Value `json:"temperature"`
	TS          jsontext.Value `json:"ts"`
	Timestamp   jsontext.Value `json:"timestamp"`
	Unit        jsontext.Value `json:"unit"`
	Seq         jsontext.Value `json:"seq"`
}

// decode fills f from the JSON object b. It finds what encoding/json's
// Unmarshal into a map[string]json.RawMessage finds (exact names, the last
// of repeated ones, invalid UTF-8 allowed; FuzzPayloadFields checks it), at
// a third of the cost: encoding/json/v2 (go-json-experiment/json, its
// mirror until Go 1.27) reads the input once, and a struct needs no map.
func (f *payloadFields) decode(b []byte) error {
	return jsonv2.Unmarshal(b, f, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
}

// jsonString decodes a raw JSON value into a string as encoding/json's
// Unmarshal does (null is "", invalid UTF-8 becomes U+FFFD), for less.
func jsonString(raw []byte) (string, error) {
	var s string
	err := jsonv2.Unmarshal(raw, &s, jsontext.AllowInvalidUTF8(true))
	return s, err
}

// oneOf returns the field named a (raw ra) or its alias b (raw rb),
// refusing both at once. A JSON null counts as absent.
func oneOf(ra, rb []byte, a, b string) ([]byte, string, error) {
	ra, rb = present(ra), present(rb)
	switch {
	case ra != nil && rb != nil:
		return nil, "", fmt.Errorf("give %s or %s, not both", a, b)
	case rb != nil:
		return rb, b, nil
	default:
		return ra, a, nil
	}
}

func present(raw []byte) []byte {
	if raw == nil || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	return raw
}

// finite reads a JSON number that float64 holds finitely. JSON has no NaN
// or Infinity, but 1e999 overflows to Inf.
func finite(raw []byte, name string) (float64, error) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
		return 0, fmt.Errorf("%s must be a number", name)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s must be a finite number", name)
	}
	return v, nil
}

// parseTime reads an RFC 3339 string or Unix seconds/milliseconds.
func parseTime(raw []byte, name string) (time.Time, error) {
	var t time.Time
	if s := bytes.TrimSpace(raw); len(s) > 0 && s[0] == '"' {
		str, err := jsonString(s)
		if err != nil {
			return t, fmt.Errorf("%s must be an RFC 3339 string or Unix seconds", name)
		}
		if t, err = time.Parse(time.RFC3339Nano, str); err != nil {
			return t, fmt.Errorf("%s %q is not an RFC 3339 time with a zone", name, Truncate(str, 40))
		}
	} else {
		n, err := finite(raw, name)
		if err != nil {
			return t, fmt.Errorf("%s must be an RFC 3339 string or Unix seconds", name)
		}
		// Microseconds from seconds or milliseconds; an integer literal is
		// taken exactly, a fraction rounded to the microsecond.
		perUnit := 1e6
		if math.Abs(n) >= 1e11 {
			perUnit = 1e3 // milliseconds
		}
		if n < float64(MinTimestamp.Unix())*1e6/perUnit || n >= float64(MaxTimestamp.Unix())*1e6/perUnit {
			return t, fmt.Errorf("%s is absurd (before %d or from %d)", name, MinTimestamp.Year(), MaxTimestamp.Year())
		}
		if i, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64); err == nil {
			t = time.UnixMicro(i * int64(perUnit))
		} else {
			t = time.UnixMicro(int64(math.Round(n * perUnit)))
		}
	}
	if t.Before(MinTimestamp) || !t.Before(MaxTimestamp) {
		return t, fmt.Errorf("%s is absurd (before %d or from %d)", name, MinTimestamp.Year(), MaxTimestamp.Year())
	}
	// PostgreSQL keeps microseconds; cutting here makes (sensor, time) the
	// same key in Go as in the unique index.
	return t.UTC().Truncate(time.Microsecond), nil
}

// Truncate cuts s to at most n bytes, on a character boundary, and marks
// the cut with "…": for quoting what a client sent in an error, a reason
// or a log line.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
