// Package openapitest checks real HTTP responses against the OpenAPI
// document, so every handler test also tests the contract.
package openapitest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/tempwatch/tempwatch/shared/openapi"
)

// Load returns the document, loaded and validated.
func Load() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openapi.YAML())
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(context.Background())
}

var router = sync.OnceValues(func() (routers.Router, error) {
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	doc.Servers = nil // match any host: tests call httptest servers
	return gorillamux.NewRouter(doc)
})

// Check fails tb unless the document has req's route and resp (status,
// headers, body) is one of the responses it describes. resp.Body stays readable.
func Check(tb testing.TB, req *http.Request, resp *http.Response) {
	tb.Helper()
	rt, err := router()
	if err != nil {
		tb.Fatalf("openapitest: load document: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("openapitest: read response body: %v", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := rt.FindRoute(req)
	if err != nil && resp.StatusCode == http.StatusNotFound && resp.Header.Get("Content-Type") == "application/problem+json" {
		return // an unknown route answered as every function answers one
	}
	if err != nil {
		tb.Errorf("openapitest: %s %s is not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		tb.Errorf("openapitest: %s %s → %d does not match the OpenAPI document: %v\nbody: %s",
			req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
}

// Handler returns h with every response checked by Check, for tests that
// serve a handler through httptest.
func Handler(tb testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		resp := rec.Result()
		Check(tb, r, resp)
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}
