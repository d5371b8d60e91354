package invoker_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/bridge/invoker"
	"github.com/tempwatch/tempwatch/shared/telemetry"
)

// The Invoke API peer is a real HTTP server speaking what AWS, the RIE and
// devstack speak: POST /2015-03-31/functions/{name}/invocations.
func TestInvoke(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		funcError string
		body      string
		want      telemetry.BatchResponse
		wantErr   string
	}{
		{"answer", 200, "", `{"accepted":1,"duplicates":0,"rejected":1,"rejections":[{"id":"b","reason":"not JSON"}],"batchItemFailures":[{"itemIdentifier":"c"}]}`,
			telemetry.BatchResponse{Accepted: 1, Rejected: 1, Rejections: []telemetry.Rejection{{ID: "b", Reason: "not JSON"}},
				BatchItemFailures: []telemetry.BatchItemFailure{{ItemIdentifier: "c"}}}, ""},
		{"function error", 200, "Unhandled", `{"errorMessage":"db down","errorType":"errorString"}`, telemetry.BatchResponse{},
			"ingest function error (Unhandled): errorString: db down"},
		{"service error", 500, "", `{"message":"boom"}`, telemetry.BatchResponse{}, "StatusCode: 500"},
		{"not JSON", 200, "", `oops`, telemetry.BatchResponse{}, "decode ingest response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got telemetry.BatchRequest
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				assert.Equal(t, "/2015-03-31/functions/ingest/invocations", r.URL.Path)
				assert.Contains(t, r.Header.Get("Authorization"), "Credential=test/", "signed with the dummy credentials")
				b, _ := io.ReadAll(r.Body)
				assert.NoError(t, json.Unmarshal(b, &got))
				if tt.funcError != "" {
					w.Header().Set("X-Amz-Function-Error", tt.funcError)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			inv, err := invoker.New(context.Background(), invoker.Config{Function: "ingest", Endpoint: srv.URL, Region: "us-east-1"},
				func(string) string { return "" })
			require.NoError(t, err)
			req := telemetry.BatchRequest{Messages: []telemetry.Message{{ID: "a", Topic: "t", Payload: []byte(`{"value":1}`)}}}
			resp, err := inv.Invoke(context.Background(), req)
			assert.Equal(t, req.Messages[0].Payload, got.Messages[0].Payload, "the batch reached the function")
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, resp)
		})
	}
}
