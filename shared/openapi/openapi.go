// Package openapi holds the OpenAPI 3.1 document of the whole HTTP API
// (openapi.yaml, embedded) and the handler that serves it as JSON.
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/tempwatch/tempwatch/shared/httpapi"
)

//go:embed openapi.yaml
var source []byte

// YAML returns the document as written.
func YAML() []byte { return source }

var asJSON = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(source, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml as JSON: %w", err)
	}
	return b, nil
})

// JSON returns the document as JSON, the form GET /openapi.json serves.
func JSON() ([]byte, error) { return asJSON() }

// NewHandler serves GET /openapi.json (public: no token needed).
func NewHandler(log *slog.Logger) http.Handler {
	rt := httpapi.NewRouter(log)
	rt.Public("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) error {
		b, err := JSON()
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(b)
		return nil
	})
	return rt
}
