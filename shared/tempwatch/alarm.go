package tempwatch

import (
	"context"
	"time"
)

// Alarm kinds: an excursion above the high or below the low limit, or a
// sensor that stopped sending.
const (
	AlarmHigh   = ExcursionHigh
	AlarmLow    = ExcursionLow
	AlarmSilent = "silent"
)

// Alarm states. An excursion shorter than its sensor's delay is pending and
// shown nowhere; "withdrawn" is an acknowledged alarm whose excursion a late
// reading or a correction removed.
const (
	AlarmPending   = "pending"
	AlarmOpen      = "open"
	AlarmCleared   = "cleared"
	AlarmWithdrawn = "withdrawn"
)

// AlarmKinds and AlarmStates list the values a filter may name.
var (
	AlarmKinds  = []string{AlarmHigh, AlarmLow, AlarmSilent}
	AlarmStates = []string{AlarmOpen, AlarmCleared, AlarmWithdrawn}
)

// Alarm is one excursion of a sensor beyond a limit, or one silence. Times of
// excursions are measured times (the readings'); times of a silence are
// receipt times.
type Alarm struct {
	ID       string `json:"id"`
	SensorID string `json:"sensor_id"`
	ClientID string `json:"client_id"`
	Kind     string `json:"kind"`
	State    string `json:"state"`
	// StartedAt is the first reading beyond the limit (a silence: the last
	// receipt before it).
	StartedAt time.Time `json:"started_at"`
	// OpenedAt is when the excursion became an alarm: StartedAt plus the
	// sensor's delay (a silence: plus its threshold).
	OpenedAt time.Time `json:"opened_at"`
	// LastAt is the excursion's latest reading (beyond the limit or in the
	// hysteresis band); ClearedAt the reading that brought it back (nil
	// while open).
	LastAt    time.Time  `json:"last_at"`
	ClearedAt *time.Time `json:"cleared_at"`
	// Peak is the highest (high) or lowest (low) value; nil for a silence.
	Peak *float64 `json:"peak"`
	// DurationSeconds is the time out of range: to ClearedAt, or to LastAt
	// while open.
	DurationSeconds float64          `json:"duration_seconds"`
	Acknowledgement *Acknowledgement `json:"acknowledgement"`
	CreatedAt       time.Time        `json:"created_at"`
	UpdatedAt       time.Time        `json:"updated_at"`
}

// Acknowledgement records who acknowledged an alarm, when, and why.
// Acknowledging does not clear an alarm.
type Acknowledgement struct {
	UserID  string    `json:"user_id,omitempty"` // "" once that user is deleted
	At      time.Time `json:"at"`
	Comment string    `json:"comment"`
}

// Alarm event types: what notifications tell, one per change of an alarm.
const (
	EventAlarmOpened       = "alarm.opened"
	EventAlarmCleared      = "alarm.cleared"
	EventAlarmAcknowledged = "alarm.acknowledged"
	EventAlarmWithdrawn    = "alarm.withdrawn"
)

// AlarmEventTypes lists the event types a webhook may subscribe to.
var AlarmEventTypes = []string{EventAlarmOpened, EventAlarmCleared, EventAlarmAcknowledged, EventAlarmWithdrawn}

// AlarmFilter selects alarms for a list, newest start first; empty fields
// select all.
type AlarmFilter struct {
	ClientID string // "" for every client (admins only)
	SensorID string
	Kind     string
	State    string
	// From and To select the alarms live at some time of [From, To): started
	// before To, and open, started at or after From, or cleared after it. A
	// withdrawn alarm that never cleared is live up to its last reading out
	// of range, inclusive. Zero for no bound.
	From, To time.Time
	Page     PageRequest
}

// AlarmService reads alarms and acknowledges them.
type AlarmService interface {
	// FindAlarms returns up to f.Page.Limit+1 alarms, newest start first
	// (the page cursor's CreatedAt is the start).
	FindAlarms(ctx context.Context, f AlarmFilter) ([]*Alarm, error)
	FindAlarmByID(ctx context.Context, id string) (*Alarm, error)
	// AcknowledgeAlarm records the caller's acknowledgement with comment,
	// its audit event and its alarm event in one transaction; acknowledging
	// again is ECONFLICT.
	AcknowledgeAlarm(ctx context.Context, id, userID, comment string) (*Alarm, error)
}
