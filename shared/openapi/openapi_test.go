package openapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/openapi"
	"github.com/tempwatch/tempwatch/shared/openapi/openapitest"
)

func TestDocumentLoadsAndValidates(t *testing.T) {
	doc, err := openapitest.Load()
	require.NoError(t, err)
	assert.Equal(t, "3.1.0", doc.OpenAPI)
	assert.Contains(t, doc.Components.SecuritySchemes, "bearerAuth")
	assert.Contains(t, doc.Components.Schemas, "Problem")
}

// TestDocumentNamesExactlyTheTemplateRoutes fails when a route is added to
// template.yaml without being documented, or documented without existing.
func TestDocumentNamesExactlyTheTemplateRoutes(t *testing.T) {
	path, err := openapitest.FindTemplate()
	require.NoError(t, err)
	routes, err := openapitest.TemplateRoutes(path)
	require.NoError(t, err)
	require.NotEmpty(t, routes)
	var inTemplate []string
	for _, r := range routes {
		inTemplate = append(inTemplate, r.String())
	}
	doc, err := openapitest.Load()
	require.NoError(t, err)
	var inDoc []string
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			inDoc = append(inDoc, strings.ToUpper(m)+" "+p)
		}
	}
	sort.Strings(inTemplate)
	sort.Strings(inDoc)
	assert.Equal(t, inTemplate, inDoc, "OpenAPI paths+methods must equal template.yaml's Api events")
}

func TestEveryOperationDocumentsErrorsAsProblems(t *testing.T) {
	doc, err := openapitest.Load()
	require.NoError(t, err)
	for p, item := range doc.Paths.Map() {
		for m, op := range item.Operations() {
			def := op.Responses.Default()
			if assert.NotNil(t, def, "%s %s has no default response", m, p) {
				assert.Contains(t, def.Value.Content, "application/problem+json", "%s %s default", m, p)
			}
		}
	}
}

func TestHandlerServesTheDocumentAsJSON(t *testing.T) {
	srv := httptest.NewServer(openapitest.Handler(t, openapi.NewHandler(slog.New(slog.NewTextHandler(io.Discard, nil)))))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var served map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&served))
	assert.Equal(t, "3.1.0", served["openapi"])
	paths, _ := served["paths"].(map[string]any)
	assert.Contains(t, paths, "/sensors/{id}/rotate-key")

	resp2, err := http.Get(srv.URL + "/openapi.yaml")
	require.NoError(t, err)
	resp2.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp2.StatusCode)
}
