package tempwatch

import (
	"context"
	"time"
)

// DefaultDeadLetterTTL is how long dead letters are kept unless configured.
const DefaultDeadLetterTTL = 30 * 24 * time.Hour

// DeadLetterHeadBytes is how much of a dead letter a list shows: enough to
// recognise a payload, little enough that a full page stays small.
const DeadLetterHeadBytes = 256

// StoredDeadLetter is a dead letter as the archive keeps it. Raw holds the
// kept bytes (the archive caps them; nil in lists), Size the message's full
// length, Head its first DeadLetterHeadBytes.
type StoredDeadLetter struct {
	ID string
	DeadLetter
	Head []byte
}

// DeadLetterFilter selects dead letters for a list, newest received first
// (ties broken by id, descending).
type DeadLetterFilter struct {
	// ClientID limits the list to one client's dead letters. Without it the
	// list is empty unless AllClients is set: every client's, and those
	// attributed to none (for admins only).
	ClientID   string
	AllClients bool
	SensorID   string
	// From and To, when set (not zero), bound received_at: From <= received_at < To.
	From, To time.Time
	// Since hides dead letters received before it: those past their time to
	// live, whether or not the server has deleted them yet.
	Since time.Time
	// Page's cursor is (received_at, id) of the last item of the previous page.
	Page PageRequest
}

// DeadLetterReader reads the dead letters the archive keeps.
type DeadLetterReader interface {
	// FindDeadLetters returns up to f.Page.Limit+1 dead letters, without Raw.
	FindDeadLetters(ctx context.Context, f DeadLetterFilter) ([]StoredDeadLetter, error)
	// FindDeadLetterByID returns one dead letter with its kept bytes, or ENOTFOUND.
	FindDeadLetterByID(ctx context.Context, id string) (StoredDeadLetter, error)
}

// DeadLetterExpiry deletes dead letters past their time to live.
type DeadLetterExpiry interface {
	// EnsureDeadLetterTTL asks the server to expire dead letters ttl after
	// they were received; it reports false when the server cannot (FerretDB
	// has no TTL indexes), and then only SweepDeadLetters deletes them.
	EnsureDeadLetterTTL(ctx context.Context, ttl time.Duration) (bool, error)
	// SweepDeadLetters deletes up to max dead letters received before
	// cutoff and returns how many it deleted.
	SweepDeadLetters(ctx context.Context, cutoff time.Time, max int) (int, error)
}

// PayloadFinder finds the raw payload of a reading by its natural key.
type PayloadFinder interface {
	// FindPayload returns the payload of (sensorID, measuredAt), or ENOTFOUND.
	FindPayload(ctx context.Context, sensorID string, measuredAt time.Time) (RawPayload, error)
}
