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
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The Invoke API peer is a real HTTP server speaking what AWS, the RIE and
// devstack speak: POST /2015-03-31/functions/{name}/invocations.
func TestInvoke(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		funcError string
		body      string
		want      tempwatch.BatchResponse
		wantErr   string
	}{
		{"answer", 200, "", `{"accepted":1,"duplicates":0,"rejected":1,"rejections":[{"id":"b","reason":"not JSON"}],"batchItemFailures":[{"itemIdentifier":"c"}]}`,
			tempwatch.BatchResponse{Accepted: 1, Rejected: 1, Rejections: []tempwatch.Rejection{{ID: "b", Reason: "not JSON"}},
				BatchItemFailures: []tempwatch.BatchItemFailure{{ItemIdentifier: "c"}}}, ""},
		{"function error", 200, "Unhandled", `{"errorMessage":"db down","errorType":"errorString"}`, tempwatch.BatchResponse{},
			"ingest function error (Unhandled): errorString: db down"},
		{"service error", 500, "", `{"message":"boom"}`, tempwatch.BatchResponse{}, "StatusCode: 500"},
		{"not JSON", 200, "", `oops`, tempwatch.BatchResponse{}, "decode ingest response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.NotErrorIs(t, invokeOnce(t, tt.status, "", tt.funcError, tt.body, &tt.want, tt.wantErr), invoker.ErrTooLarge)
		})
	}
}

// TestInvokeTooLarge: AWS answers RequestTooLargeException; emulators and
// proxies may answer 413 under another name or none. Every form is
// ErrTooLarge, and nothing else is.
func TestInvokeTooLarge(t *testing.T) {
	tests := []struct {
		name, errorType, body string
	}{
		{"AWS", "RequestTooLargeException", `{"Type":"User","message":"Request must be smaller than 6291456 bytes for the InvokeFunction operation"}`},
		{"another name", "RequestEntityTooLargeException", `{"message":"too large"}`},
		{"a proxy", "", `<html>413 Request Entity Too Large</html>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := invokeOnce(t, http.StatusRequestEntityTooLarge, tt.errorType, "", tt.body, nil, "request too large")
			assert.ErrorIs(t, err, invoker.ErrTooLarge)
		})
	}
}

// invokeOnce invokes a peer that answers status, with X-Amzn-ErrorType
// errorType and X-Amz-Function-Error funcError when set, and checks the
// outcome: want when wantErr is empty, else an error containing wantErr,
// which it returns.
func invokeOnce(t *testing.T, status int, errorType, funcError, body string, want *tempwatch.BatchResponse, wantErr string) error {
	t.Helper()
	var got tempwatch.BatchRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/2015-03-31/functions/ingest/invocations", r.URL.Path)
		assert.Contains(t, r.Header.Get("Authorization"), "Credential=test/", "signed with the dummy credentials")
		b, _ := io.ReadAll(r.Body)
		assert.NoError(t, json.Unmarshal(b, &got))
		if funcError != "" {
			w.Header().Set("X-Amz-Function-Error", funcError)
		}
		if errorType != "" {
			w.Header().Set("X-Amzn-ErrorType", errorType)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	inv, err := invoker.New(context.Background(), invoker.Config{Function: "ingest", Endpoint: srv.URL, Region: "us-east-1"},
		func(string) string { return "" })
	require.NoError(t, err)
	req := tempwatch.BatchRequest{Messages: []tempwatch.Message{{ID: "a", Topic: "t", Payload: []byte(`{"value":1}`)}}}
	resp, err := inv.Invoke(context.Background(), req)
	require.Len(t, got.Messages, 1)
	assert.Equal(t, req.Messages[0].Payload, got.Messages[0].Payload, "the batch reached the function")
	if wantErr != "" {
		require.Error(t, err)
		assert.Contains(t, err.Error(), wantErr)
		return err
	}
	require.NoError(t, err)
	assert.Equal(t, *want, resp)
	return nil
}
