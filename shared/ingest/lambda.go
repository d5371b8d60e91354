package ingest

import (
	"context"
	"encoding/json"
	"fmt"

	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/tempwatch/tempwatch/shared/telemetry"
)

// BatchEventHandler returns the Lambda handler for the bridge's batch
// events: a telemetry.BatchRequest in, a telemetry.BatchResponse out. A
// malformed event is an invocation error; everything else is answered.
//
//	in:  {"messages":[{"id":"42","topic":"tempwatch/acme/sensors/dev-1/readings",
//	       "payload":"<base64 of the MQTT payload>","received_at":"2026-01-02T03:04:05.678Z"}]}
//	out: {"accepted":1,"duplicates":0,"rejected":0,"rejections":[{"id":"..","reason":".."}],
//	      "batchItemFailures":[{"itemIdentifier":".."}]}
//
// Ids must be unique within a batch. Ack every message not named in
// batchItemFailures; redeliver those (same id, payload and received_at keep
// the dead letters idempotent too).
func BatchEventHandler(svc *Service) func(context.Context, json.RawMessage) (any, error) {
	return func(ctx context.Context, event json.RawMessage) (any, error) {
		var req telemetry.BatchRequest
		// encoding/json's rules on encoding/json/v2's one-pass decoder (its
		// mirror go-json-experiment/json until Go 1.27): half the CPU.
		if err := jsonv1.Unmarshal(event, &req); err != nil {
			return nil, fmt.Errorf("ingest: event is neither an API Gateway request nor a telemetry.BatchRequest: %w", err)
		}
		return svc.HandleBatch(ctx, req), nil
	}
}
