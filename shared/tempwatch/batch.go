// The ingest contract: what the bridge hands the ingest function, and what it answers.

package tempwatch

import "time"

// Message is one broker message as the bridge received it.
type Message struct {
	// ID identifies the message within its batch; batchItemFailures name it.
	ID         string    `json:"id"`
	Topic      string    `json:"topic"`
	Payload    []byte    `json:"payload"` // base64 in JSON
	ReceivedAt time.Time `json:"received_at"`
	// Refused, when set, is why the bridge refused the message without
	// handing it over whole (over MaxPayloadBytes, or failing on its own
	// attempt after attempt). Payload then holds at most its first
	// RefusedHeadBytes and Size its full length; the function dead-letters
	// it with this reason and never parses it.
	Refused string `json:"refused,omitempty"`
	Size    int    `json:"size,omitempty"`
}

// RefusedHeadBytes is how much of a refused message the bridge hands over
// for its dead letter.
const RefusedHeadBytes = 1 << 10

// BatchRequest is the event the bridge invokes the ingest function with.
type BatchRequest struct {
	Messages []Message `json:"messages"`
}

// BatchItemFailure names a message to retry (a transient failure such as
// PostgreSQL being down). Permanent rejections are not retried.
type BatchItemFailure struct {
	ItemIdentifier string `json:"itemIdentifier"`
}

// Rejection is a message rejected for good, dead-lettered with its reason.
type Rejection struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// BatchResponse is the ingest function's answer to a batch.
type BatchResponse struct {
	Accepted          int                `json:"accepted"`
	Duplicates        int                `json:"duplicates"`
	Rejected          int                `json:"rejected"`
	Rejections        []Rejection        `json:"rejections,omitempty"`
	BatchItemFailures []BatchItemFailure `json:"batchItemFailures"`
}
