package lambdahttp_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/httpapi"
)

// The adapter Start uses must carry an API Gateway REST proxy event to a plain
// http.Handler and back: method, path values, query, headers, body, status.
func TestRESTProxyEventReachesHandler(t *testing.T) {
	mux := httpapi.NewRouter(slog.New(slog.DiscardHandler))
	mux.Public("PATCH /clients/{id}", func(w http.ResponseWriter, r *http.Request) error {
		var in map[string]string
		require.NoError(t, httpapi.DecodeJSON(r, &in))
		httpapi.JSON(w, http.StatusAccepted, map[string]string{
			"id": r.PathValue("id"), "q": r.URL.Query().Get("q"), "h": r.Header.Get("X-Test"), "name": in["name"],
		})
		return nil
	})
	adapter := httpadapter.New(mux)

	resp, err := adapter.ProxyWithContext(context.Background(), events.APIGatewayProxyRequest{
		HTTPMethod:                      "PATCH",
		Path:                            "/clients/42",
		Resource:                        "/clients/{id}",
		PathParameters:                  map[string]string{"id": "42"},
		MultiValueQueryStringParameters: map[string][]string{"q": {"x y"}},
		MultiValueHeaders:               map[string][]string{"X-Test": {"v"}, "Content-Type": {"application/json"}},
		Body:                            `{"name":"Acme"}`,
		RequestContext:                  events.APIGatewayProxyRequestContext{Stage: "v1", RequestID: "r1"},
	})
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	var out map[string]string
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &out))
	assert.Equal(t, map[string]string{"id": "42", "q": "x y", "h": "v", "name": "Acme"}, out)

	resp, err = adapter.ProxyWithContext(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/nope"})
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Contains(t, resp.Body, "No route for GET /nope")
}
