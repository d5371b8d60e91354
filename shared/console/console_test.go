package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/console"
	"github.com/tempwatch/tempwatch/shared/openapi/openapitest"
)

// newServer serves the console with every response checked against the
// OpenAPI document.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(openapitest.Handler(t, console.NewHandler(apitest.Discard())))
	t.Cleanup(srv.Close)
	return srv
}

// get sends GET rawPath (sent as written, escapes included) with headers.
func get(t *testing.T, srv *httptest.Server, rawPath string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	req.URL.Opaque = rawPath // keeps %2F and .. as sent
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func assertSecurityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	assert.Equal(t, "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "+
		"frame-ancestors 'none'; base-uri 'none'; form-action 'none'", h.Get("Content-Security-Policy"))
	assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
	assert.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
}

func TestServesThePageAndItsFiles(t *testing.T) {
	srv := newServer(t)
	embedded := console.Assets()
	tests := []struct {
		path, file, contentType string
	}{
		{"/console", console.Page, "text/html; charset=utf-8"},
		{"/console/console.mjs", "console.mjs", "text/javascript; charset=utf-8"},
		{"/console/api.mjs", "api.mjs", "text/javascript; charset=utf-8"},
		{"/console/dom.mjs", "dom.mjs", "text/javascript; charset=utf-8"},
		{"/console/views/clients.mjs", "views/clients.mjs", "text/javascript; charset=utf-8"},
		{"/console/console.css", "console.css", "text/css; charset=utf-8"},
	}
	etags := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, srv, tt.path, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.Equal(t, tt.contentType, resp.Header.Get("Content-Type"))
			assertSecurityHeaders(t, resp.Header)
			assert.Equal(t, "public, no-cache", resp.Header.Get("Cache-Control"))
			etag := resp.Header.Get("ETag")
			assert.Regexp(t, `^"[0-9a-f]{32}"$`, etag)
			assert.False(t, etags[etag], "each file has its own ETag")
			etags[etag] = true
			assert.Equal(t, string(embedded[tt.file].Body), body)
			assert.NotEmpty(t, body)
		})
	}
}

// TestServesEveryEmbeddedFileByItsPath: every file under static/ but the
// page is served at /console/<its path there>, typed by its extension.
func TestServesEveryEmbeddedFileByItsPath(t *testing.T) {
	srv := newServer(t)
	byExt := map[string]string{".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	assets := console.Assets()
	require.Contains(t, assets, "views/sensor.mjs", "the view modules are embedded with their folder")
	for name, a := range assets {
		if name == console.Page {
			continue
		}
		t.Run(name, func(t *testing.T) {
			resp, body := get(t, srv, "/console/"+name, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.Equal(t, byExt[path.Ext(name)], resp.Header.Get("Content-Type"))
			assert.Equal(t, string(a.Body), body)
		})
	}
}

func TestUnknownFilesAreNotFoundProblems(t *testing.T) {
	srv := newServer(t)
	for _, rawPath := range []string{
		"/console/nope.js",
		"/console/index.html", // the page lives at /console only
		"/console/console.go",
		"/console/api_test.mjs",
		"/console/static",
		"/console/CONSOLE.MJS",
		"/console/console.mjs.map",
		"/console/x/console.mjs",
		"/console/",
		"/console/views",  // a directory
		"/console/views/", // the same, as a folder
		"/console/views/nope.mjs",
		"/console/views/index.html",
		"/console/views/console.mjs",
		"/console/VIEWS/clients.mjs",
		"/console/views/clients.mjs/",
		"/console/static/views/clients.mjs",
		"/console/package.json",
		"/console/tsconfig.json",
		"/console/node_modules/typescript/package.json",
		"/console/browser/drive.mjs", // the browser test's driver, not the console's
		"/elsewhere",
	} {
		t.Run(rawPath, func(t *testing.T) {
			resp, body := get(t, srv, rawPath, nil)
			assert.Equal(t, http.StatusNotFound, resp.StatusCode)
			assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			assert.Contains(t, body, `"code":"not_found"`)
			assertSecurityHeaders(t, resp.Header)
		})
	}
}

// TestNoPathTraversal sends paths that would reach other files if a request
// named a path in the file system rather than one of the embedded files.
func TestNoPathTraversal(t *testing.T) {
	// Not checked against the OpenAPI document: the mux answers dot segments
	// with redirects, which no route documents.
	srv := httptest.NewServer(console.NewHandler(apitest.Discard()))
	t.Cleanup(srv.Close)
	for _, rawPath := range []string{
		"/console/..%2Fconsole.go",
		"/console/%2e%2e%2fconsole.go",
		"/console/..%2F..%2F..%2Fgo.mod",
		"/console/static%2Fconsole.mjs",
		"/console/%2Fetc%2Fpasswd",
		"/console/..%5Cconsole.go",
		"/console/../console/console.go",
		"/console/./console.go",
		"/console/%00console.mjs",
		"/console/views/..%2F..%2Fconsole.go",
		"/console/views/%2e%2e/%2e%2e/console.go",
		"/console/views/../../console/console.go",
		"/console/views/..%2F..%2Fpackage.json",
		"/console/views/..%5C..%5Cconsole.go",
		"/console/views%2F..%2F..%2Fconsole.go",
		"/console/views/%2Fetc%2Fpasswd",
		"/console/views/..%2F..%2F..%2F..%2Fgo.mod",
		"/console/node_modules%2Ftypescript%2Fpackage.json",
	} {
		t.Run(rawPath, func(t *testing.T) {
			resp, body := get(t, srv, rawPath, nil)
			assert.NotEqual(t, http.StatusOK, resp.StatusCode, body)
			assert.NotContains(t, body, "package console")
			assert.NotContains(t, body, "module github.com")
			assert.NotContains(t, body, "root:")
			assert.NotContains(t, body, `"devDependencies"`)
			if resp.StatusCode == http.StatusOK {
				return
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				// The mux cleans dot segments by redirecting; where it leads must not be a file.
				resp, body = get(t, srv, loc, nil)
				assert.Equal(t, http.StatusNotFound, resp.StatusCode, "%s → %s: %s", rawPath, loc, body)
			}
		})
	}
}

func TestETagRevalidation(t *testing.T) {
	srv := newServer(t)
	for _, rawPath := range []string{"/console", "/console/console.mjs", "/console/views/clients.mjs", "/console/console.css"} {
		t.Run(rawPath, func(t *testing.T) {
			first, body := get(t, srv, rawPath, nil)
			require.Equal(t, http.StatusOK, first.StatusCode)
			etag := first.Header.Get("ETag")
			require.NotEmpty(t, etag)

			again, _ := get(t, srv, rawPath, nil)
			assert.Equal(t, etag, again.Header.Get("ETag"), "the ETag is stable")

			tests := []struct {
				name, ifNoneMatch string
				want              int
			}{
				{"same", etag, http.StatusNotModified},
				{"weak form", "W/" + etag, http.StatusNotModified},
				{"in a list", `"other", ` + etag, http.StatusNotModified},
				{"any", "*", http.StatusNotModified},
				{"other", `"0123456789abcdef0123456789abcdef"`, http.StatusOK},
			}
			for _, tt := range tests {
				resp, got := get(t, srv, rawPath, map[string]string{"If-None-Match": tt.ifNoneMatch})
				assert.Equal(t, tt.want, resp.StatusCode, "If-None-Match: %s", tt.ifNoneMatch)
				if tt.want == http.StatusNotModified {
					assert.Empty(t, got, "a 304 has no body")
					assert.Equal(t, etag, resp.Header.Get("ETag"))
					assert.Equal(t, "public, no-cache", resp.Header.Get("Cache-Control"))
					assertSecurityHeaders(t, resp.Header)
				} else {
					assert.Equal(t, body, got)
				}
			}
		})
	}
}

// TestPageLoadsOnlyServedFilesAndNoInlineCode: the CSP forbids inline
// scripts, styles and handlers, so the page must have none; every file it
// names must be one the handler serves.
func TestPageLoadsOnlyServedFilesAndNoInlineCode(t *testing.T) {
	srv := newServer(t)
	page := string(console.Assets()[console.Page].Body)

	refs := regexp.MustCompile(`\b(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	require.NotEmpty(t, refs)
	loaded := 0
	for _, m := range refs {
		ref := m[1]
		switch {
		case strings.HasPrefix(ref, "#"), ref == "data:,":
			continue
		case strings.HasPrefix(ref, "console/"):
			// Relative, so the page works under an API Gateway stage (/v1/console).
			resp, body := get(t, srv, "/"+ref, nil)
			assert.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", ref, body)
			loaded++
		default:
			t.Errorf("the page loads %q: only relative console/ files, fragments and data: are allowed", ref)
		}
	}
	assert.Equal(t, 2, loaded, "the page loads its script and its stylesheet")

	for _, tag := range regexp.MustCompile(`<script\b[^>]*>`).FindAllString(page, -1) {
		assert.Contains(t, tag, ` src="`, "inline script %s would be blocked by the CSP", tag)
	}
	assert.NotRegexp(t, `<style\b`, page)
	assert.NotRegexp(t, `\sstyle=`, page)
	assert.NotRegexp(t, `\son[a-z]+=`, page)
}

// modules returns every ES module of the console by its path under static/.
func modules(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, a := range console.Assets() {
		if strings.HasSuffix(name, ".mjs") {
			out[name] = string(a.Body)
		}
	}
	require.Contains(t, out, "console.mjs", "the entry module is embedded")
	return out
}

// importFrom is one static import or re-export statement of a module; its
// group is the specifier.
var importFrom = regexp.MustCompile(`(?m)^(?:import\s*(?:[\w$*{}\s,]+?\s*from\s*)?|export\s*(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s*)['"]([^'"]+)['"]`)

// TestModulesImportOnlyServedModules: a browser resolves each import of a
// module against the module's own URL, with no import map and no bundler,
// so every specifier must be relative and lead to a file the handler serves
// as JavaScript (the node tests can't tell: node would also find a bare name
// in node_modules).
func TestModulesImportOnlyServedModules(t *testing.T) {
	srv := newServer(t)
	mods := modules(t)
	imported := map[string]bool{"console.mjs": true} // the page loads the entry module
	for name, src := range mods {
		for _, m := range importFrom.FindAllStringSubmatch(src, -1) {
			spec := m[1]
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				t.Errorf("%s imports %q: only relative specifiers load in the browser", name, spec)
				continue
			}
			target := path.Join("/console", path.Dir(name), spec)
			resp, body := get(t, srv, target, nil)
			if assert.Equal(t, http.StatusOK, resp.StatusCode, "%s imports %s (%s): %s", name, spec, target, body) {
				assert.Equal(t, "text/javascript; charset=utf-8", resp.Header.Get("Content-Type"), target)
			}
			imported[strings.TrimPrefix(target, "/console/")] = true
		}
	}
	for name := range mods {
		assert.True(t, imported[name], "%s is embedded but no module imports it", name)
	}
}

// TestEveryFileHasATemplateRoute: API Gateway routes only template.yaml's
// paths to the function, one path segment per {param}, so a file in a
// folder the template does not route would be served by the tests here and
// by no deployment.
func TestEveryFileHasATemplateRoute(t *testing.T) {
	tmpl, err := openapitest.FindTemplate()
	require.NoError(t, err)
	routes, err := openapitest.TemplateRoutes(tmpl)
	require.NoError(t, err)
	var patterns []string
	for _, r := range routes {
		if r.Function == "ConsoleFunction" && r.Method == http.MethodGet {
			patterns = append(patterns, r.Path)
		}
	}
	require.NotEmpty(t, patterns, "template.yaml has no GET routes of ConsoleFunction")
	for name := range console.Assets() {
		urlPath := "/console/" + name
		if name == console.Page {
			urlPath = "/console"
		}
		assert.True(t, slices.ContainsFunc(patterns, func(p string) bool { return routeMatches(p, urlPath) }),
			"%s (%s) matches none of ConsoleFunction's routes %v", name, urlPath, patterns)
	}
}

// routeMatches reports whether a template path such as /console/{asset}
// matches urlPath, each {param} standing for one non-empty segment.
func routeMatches(pattern, urlPath string) bool {
	want, got := strings.Split(pattern, "/"), strings.Split(urlPath, "/")
	if len(want) != len(got) {
		return false
	}
	for i, w := range want {
		param := strings.HasPrefix(w, "{") && strings.HasSuffix(w, "}")
		if param && got[i] == "" || !param && w != got[i] {
			return false
		}
	}
	return true
}

// TestEveryModuleIsTypeChecked: tsc (make lint) checks the files
// tsconfig.json includes; the header makes an editor check them too.
func TestEveryModuleIsTypeChecked(t *testing.T) {
	for name, src := range modules(t) {
		assert.True(t, strings.HasPrefix(src, "// @ts-check\n"), "%s does not start with // @ts-check", name)
	}
}

// apiCall is one api('METHOD', '/route', ...) call of a module.
var apiCall = regexp.MustCompile(`^api\('([A-Z]+)', '([^']+)'`)

// TestScriptCallsOnlyTemplateRoutes finds every API call of the console's
// modules and checks that template.yaml has its method and route; a call
// whose method or route is not a literal fails too, since it cannot be checked.
func TestScriptCallsOnlyTemplateRoutes(t *testing.T) {
	tmpl, err := openapitest.FindTemplate()
	require.NoError(t, err)
	routes, err := openapitest.TemplateRoutes(tmpl)
	require.NoError(t, err)
	inTemplate := map[string]bool{}
	for _, r := range routes {
		inTemplate[r.String()] = true
	}

	calls := map[string]bool{}
	word := regexp.MustCompile(`\bapi\(`)
	for name, src := range modules(t) {
		for i, line := range strings.Split(src, "\n") {
			code := strings.TrimSpace(line)
			if strings.HasPrefix(code, "//") || strings.HasPrefix(code, "*") || strings.HasPrefix(code, "/*") {
				continue
			}
			for _, at := range word.FindAllStringIndex(line, -1) {
				if strings.HasSuffix(line[:at[0]], "function ") {
					continue // the definition
				}
				m := apiCall.FindStringSubmatch(line[at[0]:])
				if m == nil {
					t.Errorf("%s:%d: API call without a literal method and route: %s", name, i+1, code)
					continue
				}
				call := m[1] + " " + m[2]
				calls[call] = true
				assert.True(t, inTemplate[call], "%s:%d calls %s, which template.yaml does not route", name, i+1, call)
			}
		}
	}
	// The console's features, each through its route.
	for _, want := range []string{
		"POST /auth/login", "POST /auth/refresh", "POST /auth/logout", "GET /auth/me", "POST /auth/password",
		"GET /clients", "POST /clients", "GET /clients/{id}",
		"GET /sensors", "POST /sensors", "GET /sensors/{id}", "POST /sensors/{id}/rotate-key",
		"GET /sensors/{id}/readings", "GET /sensors/{id}/daily-averages",
		"GET /users", "POST /users", "PATCH /users/{id}", "GET /dead-letters",
		"PATCH /sensors/{id}", "GET /alarms", "POST /alarms/{id}/ack",
		"GET /sensors/{id}/export.csv", "GET /clients/{id}/export.csv",
	} {
		assert.True(t, calls[want], "the console no longer calls %s", want)
	}
}

// TestScriptKeepsDataOutOfMarkupAndStorage: data reaches the page as text
// only, and tokens stay in memory.
func TestScriptKeepsDataOutOfMarkupAndStorage(t *testing.T) {
	for name, src := range modules(t) {
		for _, banned := range []string{
			"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "DOMParser", "createContextualFragment",
			"localStorage", "sessionStorage", "indexedDB", "document.cookie",
			"eval(", "new Function", "setTimeout('", `setTimeout("`,
		} {
			assert.NotContains(t, src, banned, name)
		}
	}
}
