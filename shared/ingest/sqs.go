package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// IoTRuleSQL is the AWS IoT Core topic rule that puts devices' readings on
// the ingest function's SQS queue, one SQS message per MQTT message, its
// body an IoTRuleMessage. The rule in template.yaml must use exactly this
// text, with IoTRuleSQLVersion, and an SQS action without base64 encoding
// of its own (the rule already encodes the payload).
const IoTRuleSQL = "SELECT encode(*, 'base64') AS payload, topic() AS topic, timestamp() AS received_at FROM 'tempwatch/+/sensors/+/readings'"

// IoTRuleSQLVersion is the rules engine SQL version IoTRuleSQL is written
// for: encode() needs it.
const IoTRuleSQLVersion = "2016-03-23"

// IoTRuleMessage is the body of an SQS message written by IoTRuleSQL:
//
//	{"payload":"<base64 of the MQTT payload>",
//	 "topic":"tempwatch/<client-slug>/sensors/<device-id>/readings",
//	 "received_at":<Unix epoch milliseconds>}
//
// Payload is the MQTT payload as the device sent it, base64 so that a
// payload that is not JSON reaches ingest too and is dead-lettered with a
// reason instead of being dropped by the rules engine; Topic is the topic
// it was published to; ReceivedAt is when AWS IoT received it (the rule's
// timestamp()). All three are required: a body without them, or that is
// not this JSON, is dead-lettered whole.
type IoTRuleMessage struct {
	Payload    []byte `json:"payload"`
	Topic      string `json:"topic"`
	ReceivedAt int64  `json:"received_at"`
}

// ParseIoTRuleMessage reads an SQS body written by IoTRuleSQL.
func ParseIoTRuleMessage(body string) (IoTRuleMessage, error) {
	// Pointers tell a missing field from an empty one: an empty payload is
	// a device's message (rejected as such), a missing one a wrong rule.
	var wire struct {
		Payload    *[]byte `json:"payload"`
		Topic      *string `json:"topic"`
		ReceivedAt *int64  `json:"received_at"`
	}
	if err := jsonv1.Unmarshal([]byte(body), &wire); err != nil {
		return IoTRuleMessage{}, fmt.Errorf("not the JSON of the topic rule: %w", err)
	}
	var missing []error
	if wire.Payload == nil {
		missing = append(missing, errors.New("payload is missing"))
	}
	if wire.Topic == nil {
		missing = append(missing, errors.New("topic is missing"))
	}
	if wire.ReceivedAt == nil || *wire.ReceivedAt <= 0 {
		missing = append(missing, errors.New("received_at is missing"))
	}
	if err := errors.Join(missing...); err != nil {
		m := IoTRuleMessage{}
		if wire.Topic != nil {
			m.Topic = *wire.Topic
		}
		return m, err
	}
	return IoTRuleMessage{Payload: *wire.Payload, Topic: *wire.Topic, ReceivedAt: *wire.ReceivedAt}, nil
}

// sqsMessage maps an SQS record to the message HandleBatch takes, named by
// its messageId. A body that is not an IoTRuleMessage becomes a refused
// message carrying the whole body, so it is dead-lettered, never retried.
func sqsMessage(r events.SQSMessage) tempwatch.Message {
	m, err := ParseIoTRuleMessage(r.Body)
	if err != nil {
		// SentTimestamp is the same on every delivery of the message, which
		// keeps its dead letter's id the same too.
		var sent time.Time
		if ms, perr := strconv.ParseInt(r.Attributes["SentTimestamp"], 10, 64); perr == nil {
			sent = time.UnixMilli(ms).UTC()
		}
		return tempwatch.Message{ID: r.MessageId, Topic: m.Topic, Payload: []byte(r.Body), ReceivedAt: sent,
			Refused: "SQS body is not the topic rule's message: " + err.Error()}
	}
	return tempwatch.Message{ID: r.MessageId, Topic: m.Topic, Payload: m.Payload, ReceivedAt: time.UnixMilli(m.ReceivedAt).UTC()}
}

// HandleSQS ingests an SQS batch of IoTRuleMessage bodies as HandleBatch
// does a bridge batch, and answers with a partial batch response: the
// messageIds to retry are in BatchItemFailures (the event source mapping
// must report batch item failures). Every other message is deleted from the
// queue: stored, a duplicate, or rejected and dead-lettered — a malformed
// body included, so no message cycles through the queue for good.
func (s *Service) HandleSQS(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	msgs := make([]tempwatch.Message, len(ev.Records))
	for i, r := range ev.Records {
		msgs[i] = sqsMessage(r)
	}
	resp := s.handleBatch(ctx, tempwatch.BatchRequest{Messages: msgs}, batchSQS)
	out := events.SQSEventResponse{BatchItemFailures: make([]events.SQSBatchItemFailure, len(resp.BatchItemFailures))}
	for i, f := range resp.BatchItemFailures {
		out.BatchItemFailures[i] = events.SQSBatchItemFailure{ItemIdentifier: f.ItemIdentifier}
	}
	// SQS keeps no answer to read: the log says what happened to the batch.
	if resp.Rejected > 0 || len(resp.BatchItemFailures) > 0 {
		attrs := []any{"messages", len(msgs), "accepted", resp.Accepted, "duplicates", resp.Duplicates,
			"rejected", resp.Rejected, "retry", len(resp.BatchItemFailures)}
		if len(resp.Rejections) > 0 {
			attrs = append(attrs, "first_rejection", resp.Rejections[0].Reason)
		}
		s.log.InfoContext(ctx, "SQS batch with rejected or retried messages", attrs...)
	}
	return out
}
