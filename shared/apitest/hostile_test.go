package apitest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/openapi/openapitest"
)

// Hostile values, as they are put into a request. A path segment and a
// query value are written as they go on the wire (escaped, or the escapes
// themselves under test); a body value is raw JSON.
var (
	huge    = strings.Repeat("x", 1_000_000) // 1 MB: a body still fits in httpapi.MaxBodyBytes
	large   = strings.Repeat("x", 64_000)    // huge costs ~0.5 s a request under -race: it goes in once per route and caller, this elsewhere
	sql     = `' OR 1=1; DROP TABLE users; --`
	unicode = "Ωmega 🚀 \u202e ǅ \u0301 \U0010FFFF"

	hostilePath = []string{"%00", "a%00b", "%25", "%ff", "%C0%AF", "%2F", "..%2F..", url.PathEscape(sql),
		url.PathEscape(unicode), strings.Repeat("y", 100_000)}
	hostileQuery = []string{"%00", "a%00b", "%ff", "%zz", "%", "%4", "a;b", url.QueryEscape(sql),
		url.QueryEscape(unicode), url.QueryEscape(huge), "-1", "99999999999999999999999"}
	hostileQueryLarge = replaced(hostileQuery, url.QueryEscape(huge), url.QueryEscape(large))
	hostileJSON       = []string{`"a\u0000b"`, "\"\xff\xfe\"", `"` + huge + `"`, fmt.Sprintf("%q", unicode), fmt.Sprintf("%q", sql),
		`"%00%25"`, `123`, `-1.5e308`, `1e400`, `99999999999999999999999`, `true`, `null`, `[]`, `{}`,
		strings.Repeat("[", 100) + strings.Repeat("]", 100)}
	hostileJSONLarge = replaced(hostileJSON, `"`+huge+`"`, `"`+large+`"`)
	hostileBodies    = []string{``, `not json`, `{`, `[{}]`, `"x"`, `{"a":1}{"a":2}`, "\x00",
		strings.Repeat(`{"a":`, 10_000) + `1` + strings.Repeat(`}`, 10_000)}
)

// unknownRoutes reach a function that serves none of them, as API Gateway
// sends it a request it routed by another method or a greedy path.
var unknownRoutes = []string{"/nowhere", "/clients/x/y/z", "/%00", "/sensors/%25/nothing", "/console/a/b/c"}

// TestHostileInputWalk walks every route of template.yaml as an admin and
// as a client admin of A, on the valid request of the tenant table, with
// each path parameter, each documented query parameter and each body field
// (documented or sent) replaced in turn by each hostile value, and with
// hostile whole bodies; and sends unknown routes to every function. No
// answer may be a 5xx, and every error is a problem with a code and a
// request id.
func TestHostileInputWalk(t *testing.T) {
	path, err := openapitest.FindTemplate()
	require.NoError(t, err)
	routes, err := openapitest.TemplateRoutes(path)
	require.NoError(t, err)
	doc, err := openapitest.Load()
	require.NoError(t, err)
	byRoute := map[string]routeCase{}
	for _, c := range tenantTable {
		byRoute[c.route] = c
	}

	for _, route := range routes {
		c, ok := byRoute[route.String()]
		require.True(t, ok, "template.yaml route %s is not in the tenant table", route)
		t.Run(route.String(), func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, routes)
			query, fields := documented(t, doc, route)
			for _, who := range []int{0, 1} { // admin, client_admin of A
				p, _ := fx.caller(who)
				token := apitest.MustSessionToken(t, fx.env.DB, fx.jwt, p)
				base := c.build(fx)
				for _, req := range hostileRequests(route, base, query, fields) {
					checkNoServerError(t, fx.api, token, req, callers[who])
				}
			}
		})
	}

	t.Run("unknown routes", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, routes)
		token := apitest.MustSessionToken(t, fx.env.DB, fx.jwt, fx.env.Admin)
		for name, h := range fx.functions {
			for _, target := range unknownRoutes {
				for _, tok := range []string{"", token} {
					resp := checkNoServerError(t, h, tok, request{method: "GET", path: target}, name)
					assert.Equal(t, http.StatusNotFound, resp.Code, "%s: GET %s", name, target)
				}
			}
		}
	})
}

// documented returns the query parameters and the body fields the OpenAPI
// document names for route.
func documented(t *testing.T, doc *openapi3.T, route openapitest.Route) (query, fields []string) {
	item := doc.Paths.Find(route.Path)
	require.NotNil(t, item, "%s is not in the OpenAPI document", route)
	op := item.GetOperation(route.Method)
	require.NotNil(t, op, "%s is not in the OpenAPI document", route)
	for _, p := range append(item.Parameters, op.Parameters...) {
		if p.Value != nil && p.Value.In == "query" {
			query = append(query, p.Value.Name)
		}
	}
	if op.RequestBody != nil && op.RequestBody.Value != nil {
		for _, mt := range op.RequestBody.Value.Content {
			fields = append(fields, properties(mt.Schema)...)
		}
	}
	return query, fields
}

// properties lists the property names of schema, of its alternatives and
// of its items.
func properties(ref *openapi3.SchemaRef) []string {
	if ref == nil || ref.Value == nil {
		return nil
	}
	s := ref.Value
	var names []string
	for name := range s.Properties {
		names = append(names, name)
	}
	for _, alts := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf, s.AllOf} {
		for _, alt := range alts {
			names = append(names, properties(alt)...)
		}
	}
	return append(names, properties(s.Items)...)
}

// replaced returns values with old replaced by new.
func replaced(values []string, old, new string) []string {
	out := append([]string(nil), values...)
	for i, v := range out {
		if v == old {
			out[i] = new
		}
	}
	return out
}

// hostileRequests derives the hostile requests of route from its valid
// request base: the first query parameter and the first body field get
// the 1 MB value, the others a large one.
func hostileRequests(route openapitest.Route, base request, query, fields []string) []request {
	basePath, baseQuery, _ := strings.Cut(base.path, "?")
	var out []request
	with := func(path, rawQuery, body string) {
		if rawQuery != "" {
			path += "?" + rawQuery
		}
		out = append(out, request{method: base.method, path: path, body: body})
	}

	// Each path parameter.
	tpl, segs := strings.Split(route.Path, "/"), strings.Split(basePath, "/")
	for i, seg := range tpl {
		if !strings.HasPrefix(seg, "{") || i >= len(segs) {
			continue
		}
		for _, v := range hostilePath {
			hostile := append([]string(nil), segs...)
			hostile[i] = v
			with(strings.Join(hostile, "/"), baseQuery, base.body)
		}
	}

	// Each query parameter, and a malformed name.
	for i, name := range query {
		values := hostileQuery
		if i > 0 {
			values = hostileQueryLarge
		}
		for _, v := range values {
			with(basePath, joinQuery(baseQuery, name+"="+v), base.body)
		}
	}
	with(basePath, joinQuery(baseQuery, "%zz=1"), base.body)

	// Each body field, documented or in the valid body, and whole bodies.
	if base.method == http.MethodGet || base.method == http.MethodDelete {
		return out
	}
	var obj map[string]json.RawMessage
	_ = json.Unmarshal([]byte(base.body), &obj)
	names := map[string]bool{}
	for _, f := range fields {
		names[f] = true
	}
	for f := range obj {
		names[f] = true
	}
	for i, f := range sortedKeys(names) {
		values := hostileJSON
		if i > 0 {
			values = hostileJSONLarge
		}
		for _, v := range values {
			with(basePath, baseQuery, withField(obj, f, v))
		}
	}
	for _, b := range hostileBodies {
		with(basePath, baseQuery, b)
	}
	return out
}

// withField returns obj as JSON with field set to the raw JSON v, written
// by hand so that v's bytes (invalid UTF-8 included) reach the server as they are.
func withField(obj map[string]json.RawMessage, field, v string) string {
	rest := map[string]json.RawMessage{}
	for k, raw := range obj {
		if k != field {
			rest[k] = raw
		}
	}
	b, _ := json.Marshal(rest)
	head := fmt.Sprintf(`{%q:%s`, field, v)
	if len(rest) == 0 {
		return head + "}"
	}
	return head + "," + string(b[1:])
}

func joinQuery(q, pair string) string {
	if q == "" {
		return pair
	}
	return q + "&" + pair
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkNoServerError serves req by h with token ("" for none) and checks
// that the answer is no 5xx and, if an error, a problem with a code and
// the request's id.
func checkNoServerError(t *testing.T, h http.Handler, token string, req request, who string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(req.method, req.path, strings.NewReader(req.body))
	if req.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	what := fmt.Sprintf("%s %s as %s with body %s", req.method, abbreviate(req.path), who, abbreviate(req.body))
	if !assert.Less(t, w.Code, 500, "%s: %s", what, w.Body) || w.Code < 400 {
		return w
	}
	assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"), what)
	var p struct {
		Code      string `json:"code"`
		RequestID string `json:"request_id"`
	}
	if assert.NoError(t, json.Unmarshal(w.Body.Bytes(), &p), "%s: %s", what, w.Body) {
		assert.NotEmpty(t, p.Code, "%s: the problem has a code: %s", what, w.Body)
		assert.Equal(t, w.Header().Get("X-Request-Id"), p.RequestID, "%s: the problem names the request id", what)
		assert.NotEmpty(t, p.RequestID, what)
	}
	return w
}

func abbreviate(s string) string {
	if len(s) > 120 {
		return fmt.Sprintf("%s…(%d bytes)", s[:120], len(s))
	}
	return s
}
