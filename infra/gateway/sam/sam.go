// Package sam reads the functions and API routes that template.yaml declares,
// so the local gateway, the LocalStack deploy helper and the deploy checks all
// derive them from the one file instead of keeping lists of their own.
package sam

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/global"
)

// Template is what the tools need from a SAM template.
type Template struct {
	Functions []Function // sorted by Name
}

// Function is one AWS::Serverless::Function.
type Function struct {
	LogicalID string  // resource name, e.g. ClientsFunction
	Name      string  // folder name under functions/, e.g. clients
	CodeURI   string  // as written, e.g. functions/clients/
	Runtime   string  // from the resource, else Globals
	Handler   string  // from the resource, else Globals
	Routes    []Route // sorted by Path, then Method
}

// Route is one Api event: an HTTP method and a resource path with {params}.
type Route struct {
	Method   string // upper case; ANY matches every method
	Path     string // e.g. /clients/{id}
	Function string // Function.Name
	Event    string // event name in the template
}

// String renders the route as "METHOD PATH FUNCTION".
func (r Route) String() string { return r.Method + " " + r.Path + " " + r.Function }

// Load parses the SAM template at file.
func Load(file string) (*Template, error) {
	tpl, err := goformation.Open(file)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	return fromCloudFormation(tpl)
}

// Parse parses a SAM template held in memory.
func Parse(yaml []byte) (*Template, error) {
	tpl, err := goformation.ParseYAML(yaml)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	return fromCloudFormation(tpl)
}

func fromCloudFormation(tpl *cloudformation.Template) (*Template, error) {
	var runtime, handler string
	if g, ok := tpl.Globals["Function"].(*global.Function); ok {
		runtime, handler = deref(g.Runtime), deref(g.Handler)
	}
	out := &Template{}
	for id, fn := range tpl.GetAllServerlessFunctionResources() {
		f := Function{LogicalID: id, Runtime: runtime, Handler: handler}
		if fn.Runtime != nil {
			f.Runtime = *fn.Runtime
		}
		if fn.Handler != nil {
			f.Handler = *fn.Handler
		}
		if fn.CodeUri == nil || fn.CodeUri.String == nil || strings.TrimSpace(*fn.CodeUri.String) == "" {
			return nil, fmt.Errorf("function %s: CodeUri must be a local folder such as functions/<name>/", id)
		}
		f.CodeURI = *fn.CodeUri.String
		f.Name = path.Base(path.Clean(f.CodeURI))
		for name, ev := range fn.Events {
			if ev.Properties == nil || ev.Properties.ApiEvent == nil {
				continue
			}
			f.Routes = append(f.Routes, Route{
				Method:   strings.ToUpper(ev.Properties.ApiEvent.Method),
				Path:     ev.Properties.ApiEvent.Path,
				Function: f.Name,
				Event:    name,
			})
		}
		sort.Slice(f.Routes, func(i, j int) bool {
			a, b := f.Routes[i], f.Routes[j]
			if a.Path != b.Path {
				return a.Path < b.Path
			}
			return a.Method < b.Method
		})
		out.Functions = append(out.Functions, f)
	}
	sort.Slice(out.Functions, func(i, j int) bool { return out.Functions[i].Name < out.Functions[j].Name })
	return out, nil
}

// Routes lists every function's routes, in function order.
func (t *Template) Routes() []Route {
	var all []Route
	for _, f := range t.Functions {
		all = append(all, f.Routes...)
	}
	return all
}

// Function returns the function whose folder is name.
func (t *Template) Function(name string) (Function, bool) {
	for _, f := range t.Functions {
		if f.Name == name {
			return f, true
		}
	}
	return Function{}, false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
