// Package console serves the operators' admin console: one HTML page, one
// ES-module script and one stylesheet, embedded in the binary. The page holds
// no data (everything it shows comes from the REST API with the user's own
// token), so it is public; it is served with a strict Content-Security-Policy
// that allows only these files and calls to the same origin.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// ContentSecurityPolicy is sent with every response: scripts, styles and API
// calls from our own origin only, no inline code, no framing, no forms posted
// anywhere (the script sends every request itself).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// files holds the console. Only the names listed in assets are served; a
// request names an asset, never a path, so nothing else can be reached.
//
//go:embed static/index.html static/console.mjs static/console.css
var files embed.FS

// Page is the embedded name of the page served at GET /console.
const Page = "index.html"

// Asset is one embedded file as served.
type Asset struct {
	Name        string
	ContentType string
	Body        []byte
	ETag        string
}

// contentTypes names each served file and its type; GET /console/{asset}
// serves these but the page.
var contentTypes = map[string]string{
	Page:          "text/html; charset=utf-8",
	"console.mjs": "text/javascript; charset=utf-8",
	"console.css": "text/css; charset=utf-8",
}

// Assets returns every served file by name (the page under Page).
func Assets() map[string]Asset {
	out := make(map[string]Asset, len(contentTypes))
	for name, ct := range contentTypes {
		b, err := files.ReadFile("static/" + name)
		if err != nil {
			panic(fmt.Sprintf("console: embedded %s: %v", name, err)) // the embed directive lists it
		}
		sum := sha256.Sum256(b)
		out[name] = Asset{Name: name, ContentType: ct, Body: b, ETag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	}
	return out
}

// NewHandler serves GET /console and GET /console/{asset}.
func NewHandler(log *slog.Logger) http.Handler {
	assets := Assets()
	rt := httpapi.NewRouter(log)
	rt.Public("GET /console", func(w http.ResponseWriter, r *http.Request) error {
		serve(w, r, assets[Page])
		return nil
	})
	rt.Public("GET /console/{asset}", func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("asset")
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
