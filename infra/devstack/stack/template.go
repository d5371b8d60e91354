package stack

import (
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// Template is what devstack needs from a SAM template.
type Template struct {
	Functions []Function // sorted by Name
	Warnings  []string   // problems of the file that parsing worked around
}

// Function is one AWS::Serverless::Function of the template, with Globals
// applied.
type Function struct {
	LogicalID  string        // resource name, e.g. ClientsFunction
	Name       string        // folder name of CodeUri, e.g. clients
	CodeURI    string        // as written, e.g. functions/clients/
	Timeout    time.Duration // per invocation; template default 3s
	MemorySize int           // MB; template default 128
	Env        []EnvVar      // Globals first, then the function's own
	Routes     []sam.Route   // its Api events
}

// EnvVar is one environment variable of a function. Ref names the template
// parameter or resource of an intrinsic (!Ref DatabaseURL); such values are
// resolved by devstack, plain ones are passed as written.
type EnvVar struct {
	Name  string
	Value string
	Ref   string // non-empty when the value was an intrinsic function
}

var unquotedFlowBraces = regexp.MustCompile(`([{,]\s*Path:\s*)(/[^,"'}\s]*\{[^,"'\s]*\}[^,"'}\s]*)(\s*[,}])`)

// LoadTemplate parses the SAM template at file.
func LoadTemplate(file string) (*Template, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := ParseTemplate(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return t, nil
}

// ParseTemplate parses a SAM template held in memory. It works on the YAML
// node tree so CloudFormation tags such as !Ref and !Sub need no decoding.
func ParseTemplate(b []byte) (*Template, error) {
	var doc yaml.Node
	var warnings []string
	if err := yaml.Unmarshal(b, &doc); err != nil {
		// A path such as /clients/{id} written unquoted inside a flow mapping
		// ({Path: /clients/{id}, ...}) is not valid YAML; SAM rejects it too.
		// Quote such values and go on, so a developer can still run the
		// stack, but say so.
		fixed := unquotedFlowBraces.ReplaceAll(b, []byte(`${1}"${2}"${3}`))
		if yaml.Unmarshal(fixed, &doc) != nil {
			return nil, fmt.Errorf("parse template: %w", err)
		}
		warnings = append(warnings, fmt.Sprintf("template: %v: quote paths containing {…} inside {…} mappings (e.g. Path: \"/clients/{id}\"); AWS SAM rejects the file as written", err))
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("parse template: not a YAML mapping")
	}
	root := doc.Content[0]
	globals := get(get(root, "Globals"), "Function")
	resources := get(root, "Resources")
	if resources == nil || resources.Kind != yaml.MappingNode {
		return nil, errors.New("parse template: no Resources")
	}

	t := &Template{Warnings: warnings}
	seen := map[string]string{}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id, res := resources.Content[i].Value, resources.Content[i+1]
		if scalar(get(res, "Type")) != "AWS::Serverless::Function" {
			continue
		}
		fn, err := parseFunction(id, get(res, "Properties"), globals)
		if err != nil {
			return nil, fmt.Errorf("resource %s: %w", id, err)
		}
		if other, dup := seen[fn.Name]; dup {
			return nil, fmt.Errorf("resources %s and %s share CodeUri %s", other, id, fn.CodeURI)
		}
		seen[fn.Name] = id
		t.Functions = append(t.Functions, fn)
	}
	sort.Slice(t.Functions, func(i, j int) bool { return t.Functions[i].Name < t.Functions[j].Name })
	return t, nil
}

func parseFunction(id string, props, globals *yaml.Node) (Function, error) {
	fn := Function{LogicalID: id, Timeout: 3 * time.Second, MemorySize: 128}
	fn.CodeURI = scalar(get(props, "CodeUri"))
	if fn.CodeURI == "" {
		return fn, errors.New("no CodeUri (a folder such as functions/<name>/)")
	}
	fn.Name = path.Base(path.Clean(fn.CodeURI))
	for _, src := range []*yaml.Node{globals, props} {
		if v := scalar(get(src, "Timeout")); v != "" {
			secs, err := strconv.ParseFloat(v, 64)
			if err != nil || secs <= 0 {
				return fn, fmt.Errorf("timeout %q is not a positive number of seconds", v)
			}
			fn.Timeout = time.Duration(secs * float64(time.Second))
		}
		if v := scalar(get(src, "MemorySize")); v != "" {
			mb, err := strconv.Atoi(v)
			if err != nil || mb <= 0 {
				return fn, fmt.Errorf("MemorySize %q is not a positive number", v)
			}
			fn.MemorySize = mb
		}
		vars := get(get(get(src, "Environment"), "Variables"), "")
		fn.Env = mergeEnv(fn.Env, envVars(vars))
	}

	events := get(props, "Events")
	if events != nil && events.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(events.Content); i += 2 {
			name, ev := events.Content[i].Value, events.Content[i+1]
			if scalar(get(ev, "Type")) != "Api" {
				continue
			}
			p := get(ev, "Properties")
			route := sam.Route{
				Method:   strings.ToUpper(scalar(get(p, "Method"))),
				Path:     scalar(get(p, "Path")),
				Function: fn.Name,
				Event:    name,
			}
			if !strings.HasPrefix(route.Path, "/") {
				return fn, fmt.Errorf("event %s: Path %q must start with /", name, route.Path)
			}
			if route.Method == "" {
				return fn, fmt.Errorf("event %s: no Method", name)
			}
			fn.Routes = append(fn.Routes, route)
		}
	}
	sort.Slice(fn.Routes, func(i, j int) bool {
		a, b := fn.Routes[i], fn.Routes[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Method < b.Method
	})
	return fn, nil
}

// get returns the value of key in mapping n, or nil; an empty key returns n.
func get(n *yaml.Node, key string) *yaml.Node {
	if n == nil || key == "" {
		return n
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func envVars(n *yaml.Node) []EnvVar {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []EnvVar
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		ev := EnvVar{Name: k}
		custom := strings.HasPrefix(v.Tag, "!") && !strings.HasPrefix(v.Tag, "!!")
		switch {
		case v.Kind == yaml.ScalarNode && !custom:
			ev.Value = v.Value
		case v.Kind == yaml.ScalarNode:
			// !Ref X, !Sub "...", !GetAtt X.Y, !ImportValue X ...
			ev.Ref = v.Value
		case v.Kind == yaml.MappingNode && len(v.Content) == 2:
			// Long form: {Ref: X} or {Fn::Sub: ...}.
			ev.Ref = scalar(v.Content[1])
			if ev.Ref == "" {
				ev.Ref = v.Content[0].Value
			}
		default:
			ev.Ref = k
		}
		out = append(out, ev)
	}
	return out
}

func mergeEnv(base, over []EnvVar) []EnvVar {
	for _, o := range over {
		replaced := false
		for i := range base {
			if base[i].Name == o.Name {
				base[i], replaced = o, true
			}
		}
		if !replaced {
			base = append(base, o)
		}
	}
	return base
}
