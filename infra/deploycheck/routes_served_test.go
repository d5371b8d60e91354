package deploycheck_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/devstack/stack/stacktest"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
)

// dummyID stands in for every {param} of a route.
const dummyID = "0b9a4c8e-5f3d-4e2a-9c71-2d6f8b1e4a37"

// concretePath fills a route's {params} with dummy values.
func concretePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		switch {
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "+}"):
			segs[i] = "a/b"
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			segs[i] = dummyID
		}
	}
	return strings.Join(segs, "/")
}

// TestEveryTemplateRouteIsServedByItsFunction runs every function's real
// bootstrap under devstack and sends each of its template routes: the answer
// may be 401, 400, 404 for a missing resource, anything but the handler's own
// "No route for" 404 (shared/httpapi.Router), which would mean the template
// promises a route the code does not serve.
func TestEveryTemplateRouteIsServedByItsFunction(t *testing.T) {
	root := repoRoot(t)
	env := map[string]string{
		"DATABASE_URL": pgtest.MustSchemaURL(t),
		"LOG_LEVEL":    "warn",
		"JWT_ISSUER":   "tempwatch-deploycheck",
		"JWT_AUDIENCE": "tempwatch-api",
	}
	s, _ := stacktest.MustStart(t, stack.Config{Root: root, Instances: 1, Env: env})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	client := &http.Client{Timeout: 30 * time.Second}
	tested := 0
	for _, fn := range s.Functions() {
		for _, r := range fn.Routes {
			method := r.Method
			if method == "ANY" {
				method = http.MethodGet
			}
			t.Run(r.Method+" "+r.Path, func(t *testing.T) {
				var body io.Reader
				if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
					body = strings.NewReader("{}")
				}
				req, err := http.NewRequestWithContext(ctx, method, s.APIURL()+concretePath(r.Path), body)
				require.NoError(t, err)
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				resp, err := client.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				raw, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				var problem struct {
					Detail string `json:"detail"`
				}
				_ = json.Unmarshal(raw, &problem)
				notServed := resp.StatusCode == http.StatusNotFound && strings.HasPrefix(problem.Detail, "No route for")
				assert.False(t, notServed, "%s %s: function %s answered its not-found route handler: %s", method, r.Path, fn.Name, raw)
				assert.NotEqual(t, http.StatusBadGateway, resp.StatusCode, "%s %s: function %s failed: %s", method, r.Path, fn.Name, raw)
			})
			tested++
		}
	}
	assert.Positive(t, tested, "template declares no routes")
}
