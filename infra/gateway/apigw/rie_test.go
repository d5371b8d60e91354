package apigw_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/gateway/apigw"
	"github.com/tempwatch/tempwatch/infra/gateway/rietest"
	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// TestGatewayBehindRealEmulator sends 20 concurrent API requests and 20
// concurrent Invoke API calls through the gateway to one real
// aws-lambda-rie running the openapi function's bootstrap, as compose runs
// a function container: the emulator takes one invocation at a time (a
// second one during the first fails every invocation from then on), so the
// gateway must queue, and all 40 succeed.
func TestGatewayBehindRealEmulator(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	require.NoError(t, err)
	bootstrap := rietest.MustBuildFunction(t, root, "openapi")
	url := rietest.MustStart(t, bootstrap, "LOG_LEVEL=warn")

	limit := &apigw.Limiter{PerFunction: 1, Queue: 100}
	mux := http.NewServeMux()
	mux.Handle(apigw.InvokeAPIPattern, &apigw.InvokeProxy{Functions: []string{"openapi"}, URL: func(string) string { return url }, Limit: limit})
	mux.Handle("/", &apigw.Gateway{
		Router:  apigw.NewRouter([]sam.Route{{Method: "GET", Path: "/openapi.json", Function: "openapi"}}),
		Invoker: apigw.HTTPInvoker{URL: func(string) string { return url }, Client: &http.Client{}},
		Stage:   "v1",
		Limit:   limit,
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Both paths at once, as compose's bridge and API clients share a container's limit.
	event := `{"resource":"/openapi.json","path":"/openapi.json","httpMethod":"GET","requestContext":{"stage":"v1"}}`
	const n = 20
	codes := make([]int, 2*n)
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Go(func() {
			var resp *http.Response
			var err error
			if i%2 == 0 {
				resp, err = http.Get(srv.URL + "/openapi.json")
			} else {
				resp, err = http.Post(srv.URL+"/2015-03-31/functions/openapi/invocations", "application/json", strings.NewReader(event))
			}
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			codes[i] = resp.StatusCode
			if i%2 == 1 && !strings.Contains(string(body), `"statusCode":200`) {
				t.Errorf("invocation %d answered %s", i, body)
			}
		})
	}
	wg.Wait()
	for i, c := range codes {
		assert.True(t, c >= 200 && c < 300, "request %d answered %d", i, c)
	}
	// The emulator is still healthy after the burst.
	resp, err := http.Get(srv.URL + "/openapi.json")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}
