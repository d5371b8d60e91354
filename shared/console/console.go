// Package console serves the operators' admin console: one HTML page, its
// ES modules and its stylesheet, embedded in the binary. The page holds no
// data (everything it shows comes from the REST API with the user's own
// token), so it is public; it is served with a strict Content-Security-Policy
// that allows only these files and calls to the same origin.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"time"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// ContentSecurityPolicy is sent with every response: scripts, styles and API
// calls from our own origin only, no inline code, no framing, no forms posted
// anywhere (the script sends every request itself).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// files holds the console: every file under static/. A request is looked up
// among their names, never opened as a path, so nothing else can be reached.
//
//go:embed static
var files embed.FS

// Page is the embedded name of the page served at GET /console.
const Page = "index.html"

// Asset is one embedded file as served.
type Asset struct {
	Name        string // its path under static/, as GET /console/{name} names it
	ContentType string
	Body        []byte
	ETag        string
}

// contentTypes maps the extension of each kind of file the console has to
// the type it is served with; an embedded file of any other kind stops
// Assets (and so NewHandler) with an error naming it.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// Assets returns every embedded file by its path under static/ (the page
// under Page).
func Assets() map[string]Asset {
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(fmt.Sprintf("console: embedded files: %v", err)) // the embed directive names static
	}
	assets, err := loadAssets(static)
	if err != nil {
		panic(fmt.Sprintf("console: embedded files: %v", err)) // fixed at build time, and every test loads them
	}
	return assets
}

// loadAssets reads every file of fsys, by its path, with the content type of
// its extension; a file of a kind contentTypes lacks is an error.
func loadAssets(fsys fs.FS) (map[string]Asset, error) {
	out := map[string]Asset{}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("%s: no content type for its extension", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[name] = Asset{Name: name, ContentType: ct, Body: b, ETag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	return out, err
}

// NewHandler serves GET /console and GET /console/{name} for every other
// embedded file, views/clients.mjs included.
func NewHandler(log *slog.Logger) http.Handler {
	assets := Assets()
	rt := httpapi.NewRouter(log)
	rt.Public("GET /console", func(w http.ResponseWriter, r *http.Request) error {
		serve(w, r, assets[Page])
		return nil
	})
	rt.Public("GET /console/{name...}", func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		a, ok := assets[name]
		if !ok || name == Page {
			return tempwatch.Errorf(tempwatch.ENOTFOUND, "The console has no file named %q.", name)
		}
		serve(w, r, a)
		return nil
	})
	return secured(rt)
}

// secured sets the headers every console response carries, the problem
// answers included.
func secured(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// serve answers with a, or 304 when If-None-Match names its ETag. Every
// response is revalidated (no-cache): the asset names carry no version, so a
// deployment shows at the next load, and a 304 costs no body.
func serve(w http.ResponseWriter, r *http.Request, a Asset) {
	h := w.Header()
	h.Set("Content-Type", a.ContentType)
	h.Set("Cache-Control", "public, no-cache")
	h.Set("ETag", a.ETag)
	http.ServeContent(w, r, a.Name, time.Time{}, bytes.NewReader(a.Body))
}
