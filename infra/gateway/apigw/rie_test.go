package apigw_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/gateway/apigw"
	"github.com/tempwatch/tempwatch/infra/gateway/rietest"
	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// TestGatewayBehindRealEmulator sends 20 concurrent requests through the
// gateway to one real aws-lambda-rie running the openapi function's
// bootstrap, as compose runs a function container: the emulator takes one
// invocation at a time (a second one during the first fails every
// invocation from then on), so the gateway must queue, and all 20 succeed.
func TestGatewayBehindRealEmulator(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	require.NoError(t, err)
	bootstrap := rietest.MustBuildFunction(t, root, "openapi")
	url := rietest.MustStart(t, bootstrap, "LOG_LEVEL=warn")

	gw := &apigw.Gateway{
		Router:  apigw.NewRouter([]sam.Route{{Method: "GET", Path: "/openapi.json", Function: "openapi"}}),
		Invoker: apigw.HTTPInvoker{URL: func(string) string { return url }, Client: &http.Client{}},
		Stage:   "v1",
		Limit:   &apigw.Limiter{PerFunction: 1, Queue: 100},
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	const n = 20
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := http.Get(srv.URL + "/openapi.json")
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			_ = resp.Body.Close()
			codes[i] = resp.StatusCode
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
