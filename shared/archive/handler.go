// Package archive serves what MongoDB keeps for operators: the dead letters
// of refused messages (GET /dead-letters, GET /dead-letters/{id}) and a
// reading's raw payload as its device sent it (GET /measurements/{id}/raw),
// tenant-scoped as the readings themselves are. It also expires dead
// letters (Expiry).
package archive

import (
	"context"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// MeasurementFinder finds a stored reading with its client;
// tempwatch.ReadingService is one.
type MeasurementFinder interface {
	FindReadingByID(ctx context.Context, id string) (*tempwatch.Reading, error)
}

// Deps is what the handler reads from.
type Deps struct {
	DeadLetters  tempwatch.DeadLetterReader
	Payloads     tempwatch.PayloadFinder
	Measurements MeasurementFinder
	// TTL is how long dead letters are kept: older ones are never shown,
	// whether or not they are deleted yet.
	TTL time.Duration
	Log *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Handler serves the archive's routes.
type Handler struct {
	Deps
}

// NewHandler returns the archive's routes.
func NewHandler(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	h := &Handler{Deps: d}
	rt := httpapi.NewRouter(d.Log)
	rt.Handle("GET /dead-letters", h.handleListDeadLetters)
	rt.Handle("GET /dead-letters/{id}", h.handleGetDeadLetter)
	rt.Handle("GET /measurements/{id}/raw", h.handleGetRawPayload)
	return rt
}

// deadLetterMeta is what every view of a dead letter shows.
type deadLetterMeta struct {
	ID         string    `json:"id"`
	Reason     string    `json:"reason"`
	Topic      string    `json:"topic"`
	Source     string    `json:"source"`
	ReceivedAt time.Time `json:"received_at"`
	Size       int       `json:"size"`
	ClientID   string    `json:"client_id,omitempty"`
	SensorID   string    `json:"sensor_id,omitempty"`
}

// deadLetterItem is a dead letter in a list: its first bytes only.
type deadLetterItem struct {
	deadLetterMeta
	Head     []byte  `json:"head"`
	HeadText *string `json:"head_text,omitempty"`
}

// deadLetterBody is one dead letter with every byte kept.
type deadLetterBody struct {
	deadLetterMeta
	Payload   []byte  `json:"payload"`
	Text      *string `json:"text,omitempty"`
	Truncated bool    `json:"truncated"`
}

func metaOf(d tempwatch.StoredDeadLetter) deadLetterMeta {
	return deadLetterMeta{ID: d.ID, Reason: d.Reason, Topic: d.Topic, Source: d.Source, ReceivedAt: d.ReceivedAt,
		Size: max(d.Size, len(d.Raw)), ClientID: d.ClientID, SensorID: d.SensorID}
}

// textOf returns b as text when it is UTF-8, nil otherwise. When b is only
// the first bytes of a longer message, a character cut at its end is left
// out rather than making the whole text invalid.
func textOf(b []byte, cut bool) *string {
	if cut {
		b = trimCutRune(b)
	}
	if !utf8.Valid(b) {
		return nil
	}
	s := string(b)
	return &s
}

// trimCutRune drops an incomplete UTF-8 sequence at the end of b.
func trimCutRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// cutoff is the oldest received time still kept.
func (h *Handler) cutoff() time.Time { return h.Now().Add(-h.TTL) }

// visible reports whether p may read d: a client's own dead letters, and
// for admins every one, those attributed to no client included.
func (h *Handler) visible(p tempwatch.Principal, d tempwatch.StoredDeadLetter) bool {
	if tempwatch.Authorize(p, tempwatch.Read, d.ClientID, "Dead letter") != nil {
		return false
	}
	return !d.ReceivedAt.Before(h.cutoff())
}

func (h *Handler) handleListDeadLetters(w http.ResponseWriter, r *http.Request) error {
	p, page, err := httpapi.ListRequest(r)
	if err != nil {
		return err
	}
	f, err := parseDeadLetterFilter(r, page)
	if err != nil {
		return err
	}
	f.Since = h.cutoff()
	items := []tempwatch.StoredDeadLetter{}
	// A non-admin naming another client gets an empty list, as the users
	// list does: as if that client had none.
	f.AllClients = p.IsAdmin() && f.ClientID == ""
	var ok bool
	if f.ClientID, ok = tempwatch.ListScope(p, f.ClientID); ok {
		if items, err = h.DeadLetters.FindDeadLetters(r.Context(), f); err != nil {
			return err
		}
	}
	out := make([]deadLetterItem, len(items))
	for i, d := range items {
		out[i] = deadLetterItem{deadLetterMeta: metaOf(d), Head: nonNil(d.Head), HeadText: textOf(d.Head, len(d.Head) < d.Size)}
	}
	httpapi.JSON(w, http.StatusOK, httpapi.NewPage(out, page.Limit, func(d deadLetterItem) tempwatch.Cursor {
		return tempwatch.Cursor{CreatedAt: d.ReceivedAt, ID: d.ID}
	}))
	return nil
}

// parseDeadLetterFilter reads client_id, sensor_id and the RFC 3339 from/to
// bounds on received_at.
func parseDeadLetterFilter(r *http.Request, page tempwatch.PageRequest) (tempwatch.DeadLetterFilter, error) {
	q := r.URL.Query()
	f := tempwatch.DeadLetterFilter{ClientID: q.Get("client_id"), SensorID: q.Get("sensor_id"), Page: page}
	v := tempwatch.Validation{}
	if f.ClientID != "" && !tempwatch.IsUUID(f.ClientID) {
		v.Add("client_id", "must be a client id")
	}
	if f.SensorID != "" && !tempwatch.IsUUID(f.SensorID) {
		v.Add("sensor_id", "must be a sensor id")
	}
	f.From, f.To = httpapi.ParseTimeRange(q, v)
	return f, v.Err()
}

func (h *Handler) handleGetDeadLetter(w http.ResponseWriter, r *http.Request) error {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	d, err := h.DeadLetters.FindDeadLetterByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !h.visible(p, d) {
		return tempwatch.NotFound("Dead letter")
	}
	meta := metaOf(d)
	body := deadLetterBody{deadLetterMeta: meta, Payload: nonNil(d.Raw), Truncated: len(d.Raw) < meta.Size}
	body.Text = textOf(d.Raw, body.Truncated)
	httpapi.JSON(w, http.StatusOK, body)
	return nil
}

// rawPayloadBody is a reading's payload as its device sent it.
type rawPayloadBody struct {
	MeasurementID int64     `json:"measurement_id"`
	SensorID      string    `json:"sensor_id"`
	MeasuredAt    time.Time `json:"measured_at"`
	Topic         string    `json:"topic"`
	Source        string    `json:"source"`
	ReceivedAt    time.Time `json:"received_at"`
	Size          int       `json:"size"`
	Payload       []byte    `json:"payload"`
	Text          *string   `json:"text,omitempty"`
}

func (h *Handler) handleGetRawPayload(w http.ResponseWriter, r *http.Request) error {
	p, err := tempwatch.Caller(r.Context())
	if err != nil {
		return err
	}
	m, err := h.Measurements.FindReadingByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := tempwatch.Authorize(p, tempwatch.Read, m.ClientID, "Measurement"); err != nil {
		return err
	}
	raw, err := h.Payloads.FindPayload(r.Context(), m.SensorID, m.MeasuredAt)
	if tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND {
		err = tempwatch.Errorf(tempwatch.ENOTFOUND, "The archive holds no raw payload for this measurement: "+
			"it was entered through the API, its measured_at was corrected since, or its payload is not archived (yet).")
	}
	if err != nil {
		return err
	}
	httpapi.JSON(w, http.StatusOK, rawPayloadBody{MeasurementID: m.ID, SensorID: m.SensorID, MeasuredAt: m.MeasuredAt,
		Topic: raw.Topic, Source: raw.Source, ReceivedAt: raw.ReceivedAt, Size: len(raw.Raw),
		Payload: nonNil(raw.Raw), Text: textOf(raw.Raw, false)})
	return nil
}

// nonNil makes empty bytes encode as "" rather than null.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
