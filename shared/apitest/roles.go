package apitest

// The fast tier's role tables: every route of one function as each caller,
// on a handler over fakes of the domain's stores (shared/tempwatch/mock),
// with real tokens through the real middleware, so they need no server. The
// tenant walk (routes_test.go) checks the same rules on the real stack.

import (
	"cmp"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/openapi/openapitest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The callers of a role table: the indexes of RoleCase.Want.
const (
	AsAdmin = iota
	AsAdminA
	AsViewerA
	AsAdminB
	AsAnonymous
)

// CallerNames names the callers of a role table, in the order of RoleCase.Want.
var CallerNames = [...]string{"admin", "client_admin of A", "viewer of A", "client_admin of B", "anonymous"}

// Tenants are clients A and B and a principal of each role, as ids only:
// Env's counterpart for handlers over fakes, which decide what exists.
type Tenants struct {
	ClientA, ClientB               string
	Admin, AdminA, ViewerA, AdminB tempwatch.Principal
}

// NewTenants returns fresh ids for both clients and every caller.
func NewTenants() Tenants {
	tn := Tenants{ClientA: auth.NewID(), ClientB: auth.NewID()}
	tn.Admin = tempwatch.Principal{UserID: auth.NewID(), Role: tempwatch.RoleAdmin}
	tn.AdminA = tempwatch.Principal{UserID: auth.NewID(), ClientID: tn.ClientA, Role: tempwatch.RoleClientAdmin}
	tn.ViewerA = tempwatch.Principal{UserID: auth.NewID(), ClientID: tn.ClientA, Role: tempwatch.RoleViewer}
	tn.AdminB = tempwatch.Principal{UserID: auth.NewID(), ClientID: tn.ClientB, Role: tempwatch.RoleClientAdmin}
	return tn
}

// Principal returns the principal of caller i; ok is false for AsAnonymous.
func (tn Tenants) Principal(i int) (p tempwatch.Principal, ok bool) {
	switch i {
	case AsAdmin:
		return tn.Admin, true
	case AsAdminA:
		return tn.AdminA, true
	case AsViewerA:
		return tn.ViewerA, true
	case AsAdminB:
		return tn.AdminB, true
	}
	return tempwatch.Principal{}, false
}

// Writes records the store writes of one call, so a role table can check
// that a refused call changed nothing and an accepted one changed something.
type Writes struct {
	mu    sync.Mutex
	names []string
}

// Add records a write, named for the store method that made it.
func (w *Writes) Add(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.names = append(w.names, name)
}

// Done records the write op when err is nil (the fake found what op
// changes) and returns err: the tail of a fake's write method.
func (w *Writes) Done(op string, err error) error {
	if err == nil {
		w.Add(op)
	}
	return err
}

// Names returns the writes recorded, in order.
func (w *Writes) Names() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.names)
}

// RoleCase is what each caller gets on one route.
type RoleCase struct {
	Name  string // the subtest's name; "" for Route
	Route string // as template.yaml names it, e.g. "PATCH /clients/{id}"
	Path  string // the path sent, with any query; "" sends Route's own path
	Body  string // a JSON body, or ""
	Want  [5]int // the status of each caller, in the order of CallerNames
}

// NewAPI builds the handler under test for one call, over fakes that record
// their writes in w, logging to log.
type NewAPI func(log *slog.Logger, w *Writes) http.Handler

// CheckRoles serves every case as every caller of tn, each call on a fresh
// handler from newAPI behind app.Middleware with a token signed for that
// caller (none for anonymous). It checks each status; that a refused call
// (4xx, 5xx) wrote nothing and an accepted one other than a GET wrote
// something; and every response against the OpenAPI document. cases must
// name every route template.yaml gives function, and no other (a route may
// have several cases), so a route added there fails here until its rules
// are written down.
func CheckRoles(t *testing.T, function string, tn Tenants, newAPI NewAPI, cases []RoleCase) {
	t.Helper()
	checkRoutesOf(t, function, cases)
	jwt := MustJWT(t)
	for _, c := range cases {
		method, pattern, _ := strings.Cut(c.Route, " ")
		path := cmp.Or(c.Path, pattern)
		t.Run(cmp.Or(c.Name, c.Route), func(t *testing.T) {
			t.Parallel()
			for i, name := range CallerNames {
				t.Run(name, func(t *testing.T) {
					var w Writes
					log := Logger(t)
					h := app.Middleware(log, auth.NewVerifier(jwt), newAPI(log, &w))
					token := ""
					if p, ok := tn.Principal(i); ok {
						token = MustToken(t, jwt, p)
					}
					resp := DoToken(t, h, token, method, path, c.Body)
					assert.Equal(t, c.Want[i], resp.Status, "%s %s as %s: %s", method, path, name, resp.Body)
					switch {
					case resp.Status >= 400:
						assert.Empty(t, w.Names(), "a refused %s %s as %s writes nothing", method, path, name)
					case method != http.MethodGet:
						assert.NotEmpty(t, w.Names(), "an accepted %s %s as %s writes", method, path, name)
					}
				})
			}
		})
	}
}

// checkRoutesOf fails t unless cases name each route template.yaml gives
// function, and no other.
func checkRoutesOf(t *testing.T, function string, cases []RoleCase) {
	t.Helper()
	path, err := openapitest.FindTemplate()
	require.NoError(t, err)
	routes, err := openapitest.TemplateRoutes(path)
	require.NoError(t, err)
	var want, got []string
	for _, r := range routes {
		if r.Function == function {
			want = append(want, r.String())
		}
	}
	for _, c := range cases {
		got = append(got, c.Route)
	}
	require.NotEmpty(t, want, "template.yaml has no routes of %s", function)
	slices.Sort(want)
	slices.Sort(got)
	assert.Equal(t, want, slices.Compact(got), "the role table of %s names each of its template.yaml routes, and no other", function)
}

// Logger returns a logger writing to tb's log, which go test shows when tb
// fails (or with -v): the internal error or panic behind a wrong status.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, nil))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
