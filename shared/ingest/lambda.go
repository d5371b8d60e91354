package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// batchEvent is every event shape the ingest function takes other than an
// API Gateway request, decoded in one pass: the bridge's batch under
// "messages", an SQS batch under "Records".
type batchEvent struct {
	Messages *[]tempwatch.Message `json:"messages"`
	Records  *[]events.SQSMessage `json:"Records"`
}

// expectedEvents names what BatchEventHandler takes, for the error that
// answers anything else.
const expectedEvents = `an MQTT bridge batch {"messages":[...]} or an SQS event {"Records":[{"eventSource":"aws:sqs",...}]}`

// BatchEventHandler returns the Lambda handler for the events that are not
// API Gateway requests. Two shapes are known:
//
// The MQTT bridge's batch, a tempwatch.BatchRequest in and a
// tempwatch.BatchResponse out:
//
//	in:  {"messages":[{"id":"42","topic":"tempwatch/acme/sensors/dev-1/readings",
//	       "payload":"<base64 of the MQTT payload>","received_at":"2026-01-02T03:04:05.678Z"}]}
//	out: {"accepted":1,"duplicates":0,"rejected":0,"rejections":[{"id":"..","reason":".."}],
//	      "batchItemFailures":[{"itemIdentifier":".."}]}
//
// Ids must be unique within a batch. Ack every message not named in
// batchItemFailures; redeliver those (same id, payload and received_at keep
// the dead letters idempotent too).
//
// An SQS batch of IoTRuleMessage bodies (AWS IoT Core's topic rule), an
// events.SQSEvent in and an events.SQSEventResponse out (partial batch
// responses; see HandleSQS).
//
// Any other event — not JSON, {}, Records that are not all SQS messages, a
// batch without "messages" — is an invocation error naming what was
// expected: a mis-wired trigger must fail loudly, not pass for an empty,
// successful batch. {"messages":[]} is an empty batch.
func BatchEventHandler(svc *Service) func(context.Context, json.RawMessage) (any, error) {
	return func(ctx context.Context, event json.RawMessage) (any, error) {
		var ev batchEvent
		// encoding/json's rules on encoding/json/v2's one-pass decoder (its
		// mirror go-json-experiment/json until Go 1.27): half the CPU.
		if err := jsonv1.Unmarshal(event, &ev); err != nil {
			return nil, fmt.Errorf("ingest: event is not %s: %w", expectedEvents, err)
		}
		switch {
		case ev.Messages != nil && ev.Records != nil:
			return nil, fmt.Errorf("ingest: event has both messages and Records; want %s", expectedEvents)
		case ev.Messages != nil:
			return svc.HandleBatch(ctx, tempwatch.BatchRequest{Messages: *ev.Messages}), nil
		case ev.Records != nil:
			if err := checkSQS(*ev.Records); err != nil {
				return nil, err
			}
			return svc.HandleSQS(ctx, events.SQSEvent{Records: *ev.Records}), nil
		default:
			return nil, fmt.Errorf("ingest: unknown event (%s); want %s", describeEvent(event), expectedEvents)
		}
	}
}

// checkSQS tells whether records are an SQS batch: Lambda never sends an
// empty one, and every record names its source.
func checkSQS(records []events.SQSMessage) error {
	if len(records) == 0 {
		return fmt.Errorf("ingest: unknown event (Records is empty); want %s", expectedEvents)
	}
	for i, r := range records {
		if r.EventSource != "aws:sqs" {
			return fmt.Errorf("ingest: unknown event (Records[%d] has eventSource %q, not \"aws:sqs\"); want %s",
				i, tempwatch.Truncate(r.EventSource, 40), expectedEvents)
		}
	}
	return nil
}

// describeEvent names the top-level keys of an unknown event (never its
// values: they may be large, or secret), for the operator who mis-wired it.
func describeEvent(event []byte) string {
	var keys map[string]jsonv1.RawMessage
	if jsonv1.Unmarshal(event, &keys) != nil || keys == nil {
		return "not a JSON object"
	}
	if len(keys) == 0 {
		return "an empty object"
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, tempwatch.Truncate(k, 40))
	}
	slices.Sort(names)
	if len(names) > 8 {
		names = append(names[:8], "...")
	}
	return "keys " + strings.Join(names, ", ")
}
