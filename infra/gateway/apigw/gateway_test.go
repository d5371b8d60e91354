package apigw_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/gateway/apigw"
	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

var routes = []sam.Route{
	{Method: "GET", Path: "/clients", Function: "clients"},
	{Method: "POST", Path: "/clients", Function: "clients"},
	{Method: "GET", Path: "/clients/{id}", Function: "clients"},
	{Method: "GET", Path: "/clients/me", Function: "auth"},
	{Method: "GET", Path: "/sensors/{id}/readings/latest", Function: "readings"},
	{Method: "ANY", Path: "/docs/{proxy+}", Function: "openapi"},
}

func TestRouterMatch(t *testing.T) {
	r := apigw.NewRouter(routes)
	tests := []struct {
		name, method, path string
		wantFn, wantPath   string
		wantParams         map[string]string
		wantOK             bool
	}{
		{"literal", "GET", "/clients", "clients", "/clients", map[string]string{}, true},
		{"trailing slash", "GET", "/clients/", "clients", "/clients", map[string]string{}, true},
		{"param", "GET", "/clients/42", "clients", "/clients/{id}", map[string]string{"id": "42"}, true},
		{"literal beats param", "GET", "/clients/me", "auth", "/clients/me", map[string]string{}, true},
		{"nested", "GET", "/sensors/s1/readings/latest", "readings", "/sensors/{id}/readings/latest", map[string]string{"id": "s1"}, true},
		{"greedy any", "DELETE", "/docs/a/b.json", "openapi", "/docs/{proxy+}", map[string]string{"proxy": "a/b.json"}, true},
		{"wrong method", "DELETE", "/clients/42", "", "", nil, false},
		{"unknown", "GET", "/nope", "", "", nil, false},
		{"too deep", "GET", "/clients/42/x", "", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, params, ok := r.Match(tt.method, tt.path)
			require.Equal(t, tt.wantOK, ok, "Match(%s %s) ok", tt.method, tt.path)
			if !ok {
				return
			}
			assert.Equal(t, tt.wantFn, got.Function)
			assert.Equal(t, tt.wantPath, got.Path)
			assert.Equal(t, tt.wantParams, params)
		})
	}
}

// fakeRIE answers like the runtime interface emulator running a function that
// echoes the event it received.
func fakeRIE(t *testing.T, respond func(ev events.APIGatewayProxyRequest) (int, http.Header, string)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != apigw.InvokePath {
			http.NotFound(w, r)
			return
		}
		var ev events.APIGatewayProxyRequest
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status, h, body := respond(ev)
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newGateway(fnURL string) *apigw.Gateway {
	return &apigw.Gateway{
		Router:  apigw.NewRouter(routes),
		Invoker: apigw.HTTPInvoker{URL: func(string) string { return fnURL }},
		Stage:   "v1",
	}
}

func TestGatewayBuildsProxyEventAndWritesResponse(t *testing.T) {
	var got events.APIGatewayProxyRequest
	rie := fakeRIE(t, func(ev events.APIGatewayProxyRequest) (int, http.Header, string) {
		got = ev
		out, _ := json.Marshal(events.APIGatewayProxyResponse{
			StatusCode:        201,
			Headers:           map[string]string{"Content-Type": "application/json"},
			MultiValueHeaders: map[string][]string{"Set-Cookie": {"a=1", "b=2"}},
			Body:              `{"ok":true}`,
		})
		return 200, nil, string(out)
	})
	srv := httptest.NewServer(newGateway(rie.URL))
	defer srv.Close()

	req, err := http.NewRequest("GET", srv.URL+"/clients/abc?limit=5&tag=a&tag=b", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer x")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)

	assert.Equal(t, 201, resp.StatusCode)
	assert.Equal(t, `{"ok":true}`, string(body))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, []string{"a=1", "b=2"}, resp.Header.Values("Set-Cookie"))

	assert.Equal(t, "GET", got.HTTPMethod)
	assert.Equal(t, "/clients/{id}", got.Resource)
	assert.Equal(t, "/clients/abc", got.Path)
	assert.Equal(t, map[string]string{"id": "abc"}, got.PathParameters)
	assert.Equal(t, "b", got.QueryStringParameters["tag"])
	assert.Equal(t, []string{"a", "b"}, got.MultiValueQueryStringParameters["tag"])
	assert.Equal(t, "5", got.QueryStringParameters["limit"])
	assert.Equal(t, "Bearer x", got.Headers["Authorization"])
	assert.Equal(t, "v1", got.RequestContext.Stage)
	assert.Equal(t, "/clients/{id}", got.RequestContext.ResourcePath)
	assert.NotEmpty(t, got.RequestContext.RequestID)
	assert.Equal(t, "127.0.0.1", got.RequestContext.Identity.SourceIP)
}

// TestGatewayServesBehindTheStage: /v1/clients/abc is /clients/abc, as on
// the API's execute-api address, so a Location the function put the stage in
// front of (from requestContext.path) resolves.
func TestGatewayServesBehindTheStage(t *testing.T) {
	var got events.APIGatewayProxyRequest
	rie := fakeRIE(t, func(ev events.APIGatewayProxyRequest) (int, http.Header, string) {
		got = ev
		out, _ := json.Marshal(events.APIGatewayProxyResponse{StatusCode: 200})
		return 200, nil, string(out)
	})
	srv := httptest.NewServer(newGateway(rie.URL))
	defer srv.Close()
	for _, path := range []string{"/clients/abc", "/v1/clients/abc"} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode, path)
		assert.Equal(t, "/clients/abc", got.Path, path)
		assert.Equal(t, "/v1/clients/abc", got.RequestContext.Path, path)
	}
	resp, err := http.Get(srv.URL + "/v1clients/abc")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode, "only the stage as a whole segment")
}

// TestGatewayWithoutAStage: with no stage (a custom domain at its root),
// requestContext.path is the path as sent, never //clients/abc, which a
// function would make a protocol-relative Location of.
func TestGatewayWithoutAStage(t *testing.T) {
	var got events.APIGatewayProxyRequest
	rie := fakeRIE(t, func(ev events.APIGatewayProxyRequest) (int, http.Header, string) {
		got = ev
		out, _ := json.Marshal(events.APIGatewayProxyResponse{StatusCode: 200})
		return 200, nil, string(out)
	})
	gw := newGateway(rie.URL)
	gw.Stage = ""
	srv := httptest.NewServer(gw)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/clients/abc")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "/clients/abc", got.Path)
	assert.Equal(t, "/clients/abc", got.RequestContext.Path)
	assert.Empty(t, got.RequestContext.Stage)
}

func TestGatewayBodies(t *testing.T) {
	var got events.APIGatewayProxyRequest
	rie := fakeRIE(t, func(ev events.APIGatewayProxyRequest) (int, http.Header, string) {
		got = ev
		return 200, nil, `{"statusCode":200,"body":"AAEC","isBase64Encoded":true}`
	})
	srv := httptest.NewServer(newGateway(rie.URL))
	defer srv.Close()

	t.Run("text body passes as is", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/clients", "application/json", strings.NewReader(`{"name":"Acme"}`))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, `{"name":"Acme"}`, got.Body)
		assert.False(t, got.IsBase64Encoded)
	})
	t.Run("binary body is base64 both ways", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/clients", "application/octet-stream", strings.NewReader("\xff\x00\x01"))
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(t, "/wAB", got.Body)
		assert.True(t, got.IsBase64Encoded)
		assert.Equal(t, []byte{0, 1, 2}, body)
	})
}

func TestGatewayErrors(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		rieStatus  int
		rieHeader  http.Header
		rieBody    string
		wantStatus int
	}{
		{"unknown resource", "GET", "/nope", 200, nil, `{"statusCode":200}`, 404},
		{"unknown method", "DELETE", "/clients", 200, nil, `{"statusCode":200}`, 405},
		{"unhandled function error", "GET", "/clients", 200, http.Header{"X-Amz-Function-Error": {"Unhandled"}}, `{"errorMessage":"boom","errorType":"Panic"}`, 502},
		{"error payload without header", "GET", "/clients", 200, nil, `{"errorMessage":"boom"}`, 502},
		{"emulator failure", "GET", "/clients", 500, nil, `oops`, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rie := fakeRIE(t, func(events.APIGatewayProxyRequest) (int, http.Header, string) {
				return tt.rieStatus, tt.rieHeader, tt.rieBody
			})
			srv := httptest.NewServer(newGateway(rie.URL))
			defer srv.Close()
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			body, _ := io.ReadAll(resp.Body)
			assert.NotContains(t, string(body), "boom", "function internals must not leak")
			var p map[string]any
			require.NoError(t, json.Unmarshal(body, &p), string(body))
			assert.NotEmpty(t, p["code"], "a problem like every function's: %s", body)
			assert.Equal(t, resp.Header.Get("X-Request-Id"), p["request_id"])
			assert.NotEmpty(t, p["request_id"])
			assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		})
	}
}

func TestGatewayUnreachableFunction(t *testing.T) {
	srv := httptest.NewServer(newGateway("http://127.0.0.1:1"))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/clients")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
}

// The path goes to the function still percent-encoded, as a REST API sends
// it, so an escaped % or NUL reaches its router instead of failing its
// adapter; a malformed query escape is refused here, naming the parameter,
// since the event can only carry decoded values.
func TestGatewayEscapes(t *testing.T) {
	var got events.APIGatewayProxyRequest
	calls := 0
	rie := fakeRIE(t, func(ev events.APIGatewayProxyRequest) (int, http.Header, string) {
		got, calls = ev, calls+1
		return 200, nil, `{"statusCode":204}`
	})
	srv := httptest.NewServer(newGateway(rie.URL))
	defer srv.Close()
	get := func(target string) (*http.Response, map[string]any) {
		resp, err := http.Get(srv.URL + target)
		require.NoError(t, err)
		defer resp.Body.Close()
		var p map[string]any
		if b, _ := io.ReadAll(resp.Body); len(b) > 0 {
			require.NoError(t, json.Unmarshal(b, &p), string(b))
		}
		return resp, p
	}

	for _, tt := range []struct{ target, path, id string }{
		{"/clients/%25", "/clients/%25", "%"},
		{"/clients/a%00b", "/clients/a%00b", "a\x00b"},
		{"/clients/%C3%A4", "/clients/%C3%A4", "ä"},
	} {
		resp, _ := get(tt.target + "?name=%25x")
		require.Equal(t, 204, resp.StatusCode, tt.target)
		assert.Equal(t, tt.path, got.Path)
		assert.Equal(t, "/v1"+tt.path, got.RequestContext.Path)
		assert.Equal(t, tt.id, got.PathParameters["id"])
		assert.Equal(t, "%x", got.QueryStringParameters["name"])
	}

	before := calls
	resp, p := get("/clients?limit=5&name=%zz")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "invalid", p["code"])
	assert.Equal(t, map[string]any{"name": "has a malformed percent-escape (write % as %25)"}, p["errors"])
	assert.Equal(t, before, calls, "the function is not invoked")

	resp, p = get("/nowhere/%25")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "not_found", p["code"])
	assert.NotEmpty(t, p["request_id"])
}
