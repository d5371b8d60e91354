package tempwatch

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MaxWebhooksPerClient bounds a client's webhooks: each alarm event is sent
// to every one of them.
const MaxWebhooksPerClient = 10

// MaxWebhookURLLength bounds a webhook's URL.
const MaxWebhookURLLength = 2048

// Webhook is a URL of a client that alarm events are POSTed to, signed with
// its secret (shared/webhooks).
type Webhook struct {
	ID       string   `json:"id"`
	ClientID string   `json:"client_id"`
	URL      string   `json:"url"`
	Events   []string `json:"events"`
	Enabled  bool     `json:"enabled"`
	// Secret signs the deliveries. It never leaves in JSON (so never in
	// lists, gets, logs or the audit trail): the answers that create or
	// rotate it carry it explicitly.
	Secret    string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// WebhookUpdate is a partial update: nil fields are left alone.
type WebhookUpdate struct {
	URL     *string   `json:"url"`
	Events  *[]string `json:"events"`
	Enabled *bool     `json:"enabled"`
}

// WebhookFilter selects webhooks for a list, newest first.
type WebhookFilter struct {
	ClientID string // "" for every client (admins only)
	Page     PageRequest
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// DeliveryStates lists the values a filter may name.
var DeliveryStates = []string{DeliveryPending, DeliveryDelivered, DeliveryFailed}

// WebhookDelivery is one alarm event on its way to one webhook, with every
// attempt so far (oldest first).
type WebhookDelivery struct {
	ID            string     `json:"id"`
	WebhookID     string     `json:"webhook_id"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"` // nil once delivered or failed
	LastStatus    *int       `json:"last_status"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
	// AttemptLog is every attempt, oldest first.
	AttemptLog []WebhookAttempt `json:"attempt_log"`
}

// WebhookAttempt is one POST of a delivery: the receiver's status, or why
// there was none.
type WebhookAttempt struct {
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	Status     *int      `json:"status"`
	Error      string    `json:"error"`
}

// DeliveryFilter selects a webhook's deliveries for a list, newest first.
type DeliveryFilter struct {
	WebhookID string
	State     string // "" for all
	Page      PageRequest
}

// WebhookService stores webhooks and reads their deliveries.
type WebhookService interface {
	// CreateWebhook inserts w (its Secret set by the caller) and fills its
	// id and times; a client's webhook beyond MaxWebhooksPerClient is
	// ECONFLICT.
	CreateWebhook(ctx context.Context, w *Webhook) error
	FindWebhookByID(ctx context.Context, id string) (*Webhook, error)
	// FindWebhooks returns up to f.Page.Limit+1 webhooks, newest first.
	FindWebhooks(ctx context.Context, f WebhookFilter) ([]*Webhook, error)
	UpdateWebhook(ctx context.Context, id string, upd WebhookUpdate) (*Webhook, error)
	// DeleteWebhook removes the webhook with its deliveries.
	DeleteWebhook(ctx context.Context, id string) error
	// RotateWebhookSecret replaces the secret; the next attempt of every
	// pending delivery is signed with the new one.
	RotateWebhookSecret(ctx context.Context, id, secret string) (*Webhook, error)
	// FindWebhookDeliveries returns up to f.Page.Limit+1 deliveries, newest
	// first, each with its attempts.
	FindWebhookDeliveries(ctx context.Context, f DeliveryFilter) ([]*WebhookDelivery, error)
}

// DueDelivery is a delivery the worker has taken, with what it sends: the
// event and where to, and the secret to sign with.
type DueDelivery struct {
	ID        string
	WebhookID string
	ClientID  string
	URL       string
	Secret    string
	Attempts  int // before this one
	CreatedAt time.Time
	Event     WebhookEvent
}

// WebhookEvent is the JSON body of every delivery.
type WebhookEvent struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	Alarm     json.RawMessage `json:"alarm"`
}

// DeliveryOutcome is what one attempt of a delivery came to, and what is
// to become of the delivery.
type DeliveryOutcome struct {
	DeliveryID string
	// AttemptsBefore is DueDelivery.Attempts: the outcome is only applied
	// to a delivery no other worker has attempted since.
	AttemptsBefore int
	StartedAt      time.Time
	Duration       time.Duration
	Status         int    // 0: no answer
	Error          string // why there was no 2xx answer, without secrets
	// State is the delivery's new state; NextAttemptAt matters only when it
	// stays pending.
	State         string
	NextAttemptAt time.Time
}

// DeliveryTake is what a worker asks of TakeDueDeliveries.
type DeliveryTake struct {
	Now   time.Time
	Limit int
	Lease time.Duration
	// SkipWebhooks are webhooks whose deliveries are not taken: the
	// worker's with an attempt in flight, or backed off for the run.
	SkipWebhooks []string
	// Served is how many attempts each client (by id) has had in the
	// worker's run: its turns come after that many of every other client's.
	Served map[string]int
}

// DeliveryRetryWindow is how long a delivery is retried: it fails for good
// on its first failed attempt this long or more after it was created; a
// webhook re-enabled after this long fails what waited for it.
const DeliveryRetryWindow = 24 * time.Hour

// DeliveryQueue is what the delivery worker takes deliveries from and
// reports them to.
type DeliveryQueue interface {
	// TakeDueDeliveries takes up to t.Limit pending deliveries due at
	// t.Now, at most one per webhook (its oldest due), of enabled webhooks
	// not in t.SkipWebhooks, the clients taking turns (each client's oldest
	// due first, then each one's second..., a client's turns counted on from
	// t.Served), skipping those another worker holds, and leases them until
	// t.Now+t.Lease: no other worker takes them before then.
	TakeDueDeliveries(ctx context.Context, t DeliveryTake) ([]*DueDelivery, error)
	// RecordDeliveryAttempt stores the attempt and applies the outcome.
	RecordDeliveryAttempt(ctx context.Context, o DeliveryOutcome) error
}

// Validate checks a new webhook's events and the length of its URL (the
// URL's address is the webhooks package's to check), naming each bad field.
func (w *Webhook) Validate() error {
	v := Validation{}
	validateWebhookFields(v, &w.URL, &w.Events)
	if !IsUUID(w.ClientID) {
		v.Add("client_id", "must be a client's id")
	}
	return v.Err()
}

// Validate checks the fields a partial update sets.
func (u WebhookUpdate) Validate() error {
	v := Validation{}
	validateWebhookFields(v, u.URL, u.Events)
	return v.Err()
}

func validateWebhookFields(v Validation, url *string, events *[]string) {
	if url != nil {
		switch {
		case *url == "":
			v.Add("url", "is required")
		case len(*url) > MaxWebhookURLLength:
			v.Add("url", fmt.Sprintf("must be at most %d bytes", MaxWebhookURLLength))
		}
	}
	if events != nil {
		if len(*events) == 0 {
			v.Add("events", "must name at least one of "+strings.Join(AlarmEventTypes, ", "))
		}
		for i, e := range *events {
			if !slices.Contains(AlarmEventTypes, e) {
				v.Add(fmt.Sprintf("events[%d]", i), "must be one of "+strings.Join(AlarmEventTypes, ", "))
			} else if slices.Index(*events, e) != i {
				v.Add(fmt.Sprintf("events[%d]", i), "is listed twice")
			}
		}
	}
}
