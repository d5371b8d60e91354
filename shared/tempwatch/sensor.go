package tempwatch

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Sensor is a device of a client that reports temperatures. Ranges and
// thresholds are in degrees Celsius, as stored readings are; Unit is what the
// device reports in (ingest converts).
type Sensor struct {
	ID        string   `json:"id"`
	ClientID  string   `json:"client_id"`
	DeviceID  string   `json:"device_id"`
	Name      string   `json:"name"`
	Location  string   `json:"location"`
	Unit      string   `json:"unit"`
	MinValue  float64  `json:"min_value"`
	MaxValue  float64  `json:"max_value"`
	AlertLow  *float64 `json:"alert_low"`
	AlertHigh *float64 `json:"alert_high"`
	// AlarmDelaySeconds is how long a reading must stay beyond a limit
	// before the excursion is an alarm; AlarmHysteresis how far (degrees
	// Celsius) back inside it must come to clear; SilenceAfterSeconds how
	// long without a reading makes the sensor silent.
	AlarmDelaySeconds   int64   `json:"alarm_delay_seconds"`
	AlarmHysteresis     float64 `json:"alarm_hysteresis"`
	SilenceAfterSeconds int64   `json:"silence_after_seconds"`
	// LastMeasuredAt and LastReceivedAt are the newest reading's measured
	// time and when it was stored; nil before the first reading.
	LastMeasuredAt *time.Time `json:"last_measured_at"`
	LastReceivedAt *time.Time `json:"last_received_at"`
	// Status is computed when the sensor is read (SensorInAlarm,
	// SensorSilent, SensorOnline or SensorUnknown), never stored.
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Sensor defaults: the physical range a sensor gets when none is given.
const (
	DefaultSensorMin  = -100.0
	DefaultSensorMax  = 200.0
	DefaultSensorUnit = "C"
)

// Alarm settings: their defaults and bounds, as migration 005's checks
// hold them.
const (
	DefaultSilenceAfterSeconds = 15 * 60
	MinSilenceAfterSeconds     = 60
	MaxSilenceAfterSeconds     = 30 * 24 * 60 * 60
	MaxAlarmDelaySeconds       = 7 * 24 * 60 * 60
	MaxAlarmHysteresis         = 100.0
)

// Sensor statuses, from the most to the least urgent: a live high or low
// alarm; an open silent alarm or no reading for longer than the silence
// threshold; a reading within it; no reading ever.
const (
	SensorInAlarm = "in_alarm"
	SensorSilent  = "silent"
	SensorOnline  = "online"
	SensorUnknown = "unknown"
)

// SensorStatuses lists the values a sensor's status takes.
var SensorStatuses = []string{SensorInAlarm, SensorSilent, SensorOnline, SensorUnknown}

// NullFloat is a PATCH field that can be left alone (absent), cleared (null)
// or set (a number).
type NullFloat struct {
	Set   bool
	Value *float64
}

// UnmarshalJSON records that the field was present, and its value or null.
func (n *NullFloat) UnmarshalJSON(b []byte) error {
	n.Set = true
	if bytes.Equal(b, []byte("null")) {
		n.Value = nil
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	n.Value = &f
	return nil
}

// SensorUpdate is a partial update: nil (or unset) fields are left alone. The
// client of a sensor never changes, so it is not here.
type SensorUpdate struct {
	Name      *string   `json:"name"`
	DeviceID  *string   `json:"device_id"`
	Location  *string   `json:"location"`
	Unit      *string   `json:"unit"`
	MinValue  *float64  `json:"min_value"`
	MaxValue  *float64  `json:"max_value"`
	AlertLow  NullFloat `json:"alert_low"`
	AlertHigh NullFloat `json:"alert_high"`

	AlarmDelaySeconds   *int64   `json:"alarm_delay_seconds"`
	AlarmHysteresis     *float64 `json:"alarm_hysteresis"`
	SilenceAfterSeconds *int64   `json:"silence_after_seconds"`
}

// Apply returns s with the fields u sets changed.
func (u SensorUpdate) Apply(s Sensor) Sensor {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&s.Name, u.Name)
	set(&s.DeviceID, u.DeviceID)
	set(&s.Location, u.Location)
	set(&s.Unit, u.Unit)
	if u.MinValue != nil {
		s.MinValue = *u.MinValue
	}
	if u.MaxValue != nil {
		s.MaxValue = *u.MaxValue
	}
	if u.AlertLow.Set {
		s.AlertLow = u.AlertLow.Value
	}
	if u.AlertHigh.Set {
		s.AlertHigh = u.AlertHigh.Value
	}
	if u.AlarmDelaySeconds != nil {
		s.AlarmDelaySeconds = *u.AlarmDelaySeconds
	}
	if u.AlarmHysteresis != nil {
		s.AlarmHysteresis = *u.AlarmHysteresis
	}
	if u.SilenceAfterSeconds != nil {
		s.SilenceAfterSeconds = *u.SilenceAfterSeconds
	}
	return s
}

// SensorFilter selects sensors for a list.
type SensorFilter struct {
	// ClientID, when set, restricts the list to that client's sensors.
	ClientID string
	// Name matches sensors whose name contains it, case-insensitively.
	Name string
	// Status, when set, keeps the sensors of that status (SensorStatuses).
	Status string
	Page   PageRequest
}

// SensorService stores sensors. Device keys reach it only as hashes. The
// writes that issue a key also return the name its device logs in with.
type SensorService interface {
	// CreateSensor stores s with the key hash, filling its id and timestamps.
	CreateSensor(ctx context.Context, s *Sensor, keyHash []byte) (DeviceRef, error)
	FindSensorByID(ctx context.Context, id string) (*Sensor, error)
	FindSensors(ctx context.Context, f SensorFilter) ([]*Sensor, error)
	UpdateSensor(ctx context.Context, id string, upd SensorUpdate) (*Sensor, error)
	DeleteSensor(ctx context.Context, id string) error
	// SetDeviceKeyHash replaces the sensor's key (the old key stops working)
	// and returns the updated sensor.
	SetDeviceKeyHash(ctx context.Context, id string, keyHash []byte) (*Sensor, DeviceRef, error)
}

// ValidDeviceID reports whether s is a device id as the sensors table holds
// them (and as devices put them in their MQTT topic).
func ValidDeviceID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Validate checks a sensor as it would be stored, naming each bad field.
func (s *Sensor) Validate() error {
	v := Validation{}
	if !IsUUID(s.ClientID) {
		v.Add("client_id", "is required and must be a client id")
	}
	if !ValidDeviceID(s.DeviceID) {
		v.Add("device_id", "must be 1-64 letters, digits, '.', '_' or '-'")
	}
	switch n := len([]rune(s.Name)); {
	case n == 0:
		v.Add("name", "is required")
	case n > 200:
		v.Add("name", "must be at most 200 characters")
	}
	if len([]rune(s.Location)) > 200 {
		v.Add("location", "must be at most 200 characters")
	}
	if s.Unit != "C" && s.Unit != "F" {
		v.Add("unit", `must be "C" or "F"`)
	}
	finite := func(field string, f float64) bool {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e6 {
			v.Add(field, "must be a number between -1000000 and 1000000")
			return false
		}
		return true
	}
	if finite("min_value", s.MinValue) && finite("max_value", s.MaxValue) && s.MinValue >= s.MaxValue {
		v.Add("max_value", "must be greater than min_value")
	}
	lowOK := s.AlertLow == nil || finite("alert_low", *s.AlertLow)
	highOK := s.AlertHigh == nil || finite("alert_high", *s.AlertHigh)
	if lowOK && highOK && s.AlertLow != nil && s.AlertHigh != nil && *s.AlertLow >= *s.AlertHigh {
		v.Add("alert_high", "must be greater than alert_low")
	}
	if s.AlarmDelaySeconds < 0 || s.AlarmDelaySeconds > MaxAlarmDelaySeconds {
		v.Add("alarm_delay_seconds", fmt.Sprintf("must be between 0 and %d", MaxAlarmDelaySeconds))
	}
	if h := s.AlarmHysteresis; math.IsNaN(h) || h < 0 || h > MaxAlarmHysteresis {
		v.Add("alarm_hysteresis", fmt.Sprintf("must be a number between 0 and %g", MaxAlarmHysteresis))
	}
	if n := s.SilenceAfterSeconds; n < MinSilenceAfterSeconds || n > MaxSilenceAfterSeconds {
		v.Add("silence_after_seconds", fmt.Sprintf("must be between %d and %d", MinSilenceAfterSeconds, MaxSilenceAfterSeconds))
	}
	return v.Err()
}

// DeviceKeyPrefix starts every device key, so a leaked key is recognisable
// (secret scanners, logs) and cannot be mistaken for a user token.
const DeviceKeyPrefix = "twk_"

// NewDeviceKey returns a fresh device key: the prefix and 32 random bytes,
// base64url-encoded. Only its hash (HashDeviceKey) is ever stored.
func NewDeviceKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate device key: %w", err)
	}
	return DeviceKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashDeviceKey returns the SHA-256 of key, the form stored in
// sensors.device_key_hash and looked up by ingest. A plain hash is enough:
// the key has 256 bits of entropy, so there is nothing to brute-force.
func HashDeviceKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}
