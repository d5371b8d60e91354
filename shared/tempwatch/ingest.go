package tempwatch

import (
	"context"
	"time"
)

// Device is what ingest needs to know about a sensor.
type Device struct {
	SensorID   string  `json:"sensor_id"`
	ClientID   string  `json:"client_id"`
	ClientSlug string  `json:"client_slug"`
	DeviceID   string  `json:"device_id"`
	Unit       string  `json:"unit"` // the unit the device reports in when its payload names none
	MinValue   float64 `json:"min_value"`
	MaxValue   float64 `json:"max_value"`
}

// Ref returns the device's topic name.
func (d Device) Ref() DeviceRef { return DeviceRef{ClientSlug: d.ClientSlug, DeviceID: d.DeviceID} }

// WriteResult tells, for each Reading written (same index), the id of the
// row and whether this write inserted it (false: a duplicate of a stored
// reading). ReadingID is 0 for a duplicate whose row the writer could not see.
type WriteResult struct {
	ReadingID int64
	CreatedAt time.Time
	Inserted  bool
}

// DeviceStore looks devices up in the system of record.
type DeviceStore interface {
	// DevicesByRef returns the devices found among refs; unknown ones are absent.
	DevicesByRef(ctx context.Context, refs []DeviceRef) (map[DeviceRef]Device, error)
	// DeviceByKeyHash returns the device whose key has this SHA-256, or ENOTFOUND.
	DeviceByKeyHash(ctx context.Context, hash []byte) (Device, error)
	// ClientIDsBySlug returns the ids of the clients found among slugs, by
	// slug; unknown ones are absent.
	ClientIDsBySlug(ctx context.Context, slugs []string) (map[string]string, error)
}

// ReadingWriter stores readings in bulk, skipping duplicates of the natural
// key (sensor, measured_at) and keeping the rollups of what it inserts.
type ReadingWriter interface {
	WriteReadings(ctx context.Context, rs []Reading) ([]WriteResult, error)
}

// RawPayload is a device payload as received, linked to its reading by the
// reading's natural key (SensorID, MeasuredAt), which is unique in
// PostgreSQL and known before the reading is written.
type RawPayload struct {
	SensorID   string
	MeasuredAt time.Time
	Topic      string
	Source     string // "mqtt" or "http"
	ReceivedAt time.Time
	Raw        []byte
}

// DeadLetter is a message rejected for good.
type DeadLetter struct {
	MessageID  string
	ClientID   string // the client the message names, when known: dead letters are listed per client
	SensorID   string // the sensor it came from, when known
	Reason     string
	Topic      string
	Source     string
	ReceivedAt time.Time
	Raw        []byte
	Size       int // the message's full length when Raw holds only its first bytes; 0: len(Raw)
}

// PayloadArchive keeps raw payloads and dead letters. Storing the same
// call's items again is not an error and adds nothing; a payload stored
// again in a different batch may be kept twice (the same reading's bytes).
type PayloadArchive interface {
	InsertRawPayloads(ctx context.Context, ps []RawPayload) error
	InsertDeadLetters(ctx context.Context, ds []DeadLetter) error
}

// ArchiveOutbox keeps, in the system of record, what the PayloadArchive
// could not take, until it can be moved there. Each stashed call is kept
// whole and handed back whole, so the archive's idempotence holds across a
// drain that ran twice.
type ArchiveOutbox interface {
	// Stash keeps ps and ds (either may be empty) in one transaction.
	Stash(ctx context.Context, ps []RawPayload, ds []DeadLetter) error
	// Drain moves up to limit stashed calls, the least tried first, into
	// archive and deletes them. It stops at the first call archive refuses,
	// which stays with its attempt counted, and returns how many it moved
	// with that error.
	Drain(ctx context.Context, archive PayloadArchive, limit int) (int, error)
	// Pending tells what waits.
	Pending(ctx context.Context) (OutboxPending, error)
}

// OutboxPending is what waits in an ArchiveOutbox.
type OutboxPending struct {
	Calls       int // stashed archive calls
	Payloads    int // raw payloads in them
	DeadLetters int // dead letters in them
}
