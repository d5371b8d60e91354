package ingest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tempwatch/tempwatch/shared/telemetry"
)

// BatchEventHandler returns the Lambda handler for the bridge's batch
// events: a telemetry.BatchRequest in, a telemetry.BatchResponse out. A
// malformed event is an invocation error; everything else is answered.
func BatchEventHandler(svc *Service) func(context.Context, json.RawMessage) (any, error) {
	return func(ctx context.Context, event json.RawMessage) (any, error) {
		var req telemetry.BatchRequest
		if err := json.Unmarshal(event, &req); err != nil {
			return nil, fmt.Errorf("ingest: event is neither an API Gateway request nor a telemetry.BatchRequest: %w", err)
		}
		return svc.HandleBatch(ctx, req), nil
	}
}
