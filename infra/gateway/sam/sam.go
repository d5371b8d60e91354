// Package sam reads the functions and API routes that template.yaml declares,
// so the local gateway, devstack, the LocalStack deploy helper and the deploy
// checks all derive them from the one file instead of keeping lists of their
// own.
package sam

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Template is what the tools need from a SAM template.
type Template struct {
	Functions []Function // sorted by Name
	// CustomResources are the resources that CloudFormation creates by
	// invoking a function of the template, sorted by LogicalID.
	CustomResources []CustomResource
}

// CustomResource is an AWS::CloudFormation::CustomResource or Custom::<name>
// resource whose ServiceToken is a function of the template (!GetAtt
// <Function>.Arn): CloudFormation invokes that function when it creates,
// updates or deletes the resource, before it touches the resources that
// DependOn it.
type CustomResource struct {
	LogicalID  string
	Type       string
	Function   string            // Function.Name the ServiceToken names
	Properties map[string]string // its scalar properties but ServiceToken
}

// Function is one AWS::Serverless::Function, with Globals applied.
type Function struct {
	LogicalID  string        // resource name, e.g. ClientsFunction
	Name       string        // folder name under functions/, e.g. clients
	CodeURI    string        // as written, e.g. functions/clients/
	Runtime    string        // from the resource, else Globals
	Handler    string        // from the resource, else Globals
	Timeout    time.Duration // per invocation; SAM default 3s
	MemorySize int           // MB; SAM default 128
	Env        []EnvVar      // Globals first, then the function's own
	Routes     []Route       // sorted by Path, then Method
	Schedules  []Schedule    // Schedule and ScheduleV2 events, by Event
	DependsOn  []string      // the resource's DependsOn, as written
}

// Schedule is one Schedule (EventBridge rule) or ScheduleV2 (EventBridge
// Scheduler) event: the function is invoked on Expression with Input.
type Schedule struct {
	Function   string // Function.Name
	Event      string // event name in the template
	Expression string // as written: rate(1 minute), cron(0 3 * * ? *), at(...)
	// Input is the event's JSON as written; empty when the template gives
	// none, and EventBridge then sends its Scheduled Event.
	Input string
	// Disabled is Enabled: false or State: DISABLED.
	Disabled bool
}

// EnvVar is one environment variable of a function. Ref names the template
// parameter or resource of an intrinsic (!Ref DatabaseURL); such values are
// resolved by the caller, plain ones are passed as written.
type EnvVar struct {
	Name  string
	Value string
	Ref   string // non-empty when the value was an intrinsic function
}

// Route is one Api event: an HTTP method and a resource path with {params}.
type Route struct {
	Method   string // upper case; ANY matches every method
	Path     string // e.g. /clients/{id}
	Function string // Function.Name
	Event    string // event name in the template
	// Stream is set when the integration streams the function's answer
	// (ResponseTransferMode: STREAM): the function writes a prelude and
	// then the body as it goes, and the gateway passes it on as it comes.
	Stream bool
}

// String renders the route as "METHOD PATH FUNCTION".
func (r Route) String() string { return r.Method + " " + r.Path + " " + r.Function }

// Load parses the SAM template at file.
func Load(file string) (*Template, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return t, nil
}

// Parse parses a SAM template held in memory. It works on the YAML node tree
// so CloudFormation tags such as !Ref and !Sub need no decoding.
func Parse(b []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("parse template: not a YAML mapping")
	}
	root := doc.Content[0]
	globals := Get(Get(root, "Globals"), "Function")
	resources := Get(root, "Resources")
	if resources == nil || resources.Kind != yaml.MappingNode {
		return nil, errors.New("parse template: no Resources")
	}

	t := &Template{}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id, res := resources.Content[i].Value, resources.Content[i+1]
		if Scalar(Get(res, "Type")) != "AWS::Serverless::Function" {
			continue
		}
		fn, err := parseFunction(id, Get(res, "Properties"), globals)
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", id, err)
		}
		fn.DependsOn = dependsOn(Get(res, "DependsOn"))
		t.Functions = append(t.Functions, fn)
	}
	sort.Slice(t.Functions, func(i, j int) bool { return t.Functions[i].Name < t.Functions[j].Name })
	names := map[string]string{}
	for _, f := range t.Functions {
		names[f.LogicalID] = f.Name
	}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id, res := resources.Content[i].Value, resources.Content[i+1]
		typ := Scalar(Get(res, "Type"))
		if typ != "AWS::CloudFormation::CustomResource" && !strings.HasPrefix(typ, "Custom::") {
			continue
		}
		props := Get(res, "Properties")
		fn, ok := names[arnOf(Get(props, "ServiceToken"))]
		if !ok {
			continue // another account's or service's handler: nothing of ours runs
		}
		cr := CustomResource{LogicalID: id, Type: typ, Function: fn, Properties: map[string]string{}}
		for j := 0; props != nil && props.Kind == yaml.MappingNode && j+1 < len(props.Content); j += 2 {
			if k, v := props.Content[j].Value, props.Content[j+1]; k != "ServiceToken" && v.Kind == yaml.ScalarNode {
				cr.Properties[k] = v.Value
			}
		}
		t.CustomResources = append(t.CustomResources, cr)
	}
	sort.Slice(t.CustomResources, func(i, j int) bool { return t.CustomResources[i].LogicalID < t.CustomResources[j].LogicalID })
	return t, nil
}

// arnOf returns X of a !GetAtt X.Arn in any of its spellings (!GetAtt
// X.Arn, !GetAtt [X, Arn], {Fn::GetAtt: X.Arn}, {Fn::GetAtt: [X, Arn]}),
// or "".
func arnOf(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == "Fn::GetAtt" {
		n = n.Content[1]
	} else if n.Tag != "!GetAtt" {
		return ""
	}
	var id, attr string
	switch n.Kind {
	case yaml.ScalarNode:
		id, attr, _ = strings.Cut(n.Value, ".")
	case yaml.SequenceNode:
		if len(n.Content) == 2 {
			id, attr = Scalar(n.Content[0]), Scalar(n.Content[1])
		}
	}
	if attr != "Arn" {
		return ""
	}
	return id
}

// dependsOn reads a DependsOn attribute: one name or a list.
func dependsOn(n *yaml.Node) []string {
	if v := Scalar(n); v != "" {
		return []string{v}
	}
	var out []string
	for _, item := range Seq(n) {
		if v := Scalar(item); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// DeploySteps returns the functions that custom resources invoke, in Name
// order: CloudFormation runs them at deploy, and devstack runs them once,
// as plain commands, before it starts the others.
func (t *Template) DeploySteps() []Function {
	var out []Function
	for _, f := range t.Functions {
		for _, cr := range t.CustomResources {
			if cr.Function == f.Name {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

func parseFunction(id string, props, globals *yaml.Node) (Function, error) {
	fn := Function{LogicalID: id, Timeout: 3 * time.Second, MemorySize: 128}
	fn.CodeURI = Scalar(Get(props, "CodeUri"))
	if strings.TrimSpace(fn.CodeURI) == "" {
		return fn, errors.New("CodeUri must be a local folder such as functions/<name>/")
	}
	fn.Name = path.Base(path.Clean(fn.CodeURI))
	for _, src := range []*yaml.Node{globals, props} {
		if v := Scalar(Get(src, "Runtime")); v != "" {
			fn.Runtime = v
		}
		if v := Scalar(Get(src, "Handler")); v != "" {
			fn.Handler = v
		}
		if v := Scalar(Get(src, "Timeout")); v != "" {
			secs, err := strconv.ParseFloat(v, 64)
			if err != nil || secs <= 0 {
				return fn, fmt.Errorf("timeout %q is not a positive number of seconds", v)
			}
			fn.Timeout = time.Duration(secs * float64(time.Second))
		}
		if v := Scalar(Get(src, "MemorySize")); v != "" {
			mb, err := strconv.Atoi(v)
			if err != nil || mb <= 0 {
				return fn, fmt.Errorf("MemorySize %q is not a positive number", v)
			}
			fn.MemorySize = mb
		}
		fn.Env = mergeEnv(fn.Env, envVars(Get(Get(src, "Environment"), "Variables")))
	}

	events := Get(props, "Events")
	if events != nil && events.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(events.Content); i += 2 {
			name, ev := events.Content[i].Value, events.Content[i+1]
			switch Scalar(Get(ev, "Type")) {
			case "Schedule", "ScheduleV2":
				sch, err := parseSchedule(fn.Name, name, Get(ev, "Properties"))
				if err != nil {
					return fn, err
				}
				fn.Schedules = append(fn.Schedules, sch)
				continue
			case "Api":
			default:
				continue
			}
			p := Get(ev, "Properties")
			route := Route{
				Method:   strings.ToUpper(Scalar(Get(p, "Method"))),
				Path:     Scalar(Get(p, "Path")),
				Function: fn.Name,
				Event:    name,
				Stream:   strings.EqualFold(Scalar(Get(p, "ResponseTransferMode")), "STREAM"),
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
	sort.Slice(fn.Schedules, func(i, j int) bool { return fn.Schedules[i].Event < fn.Schedules[j].Event })
	sort.Slice(fn.Routes, func(i, j int) bool {
		a, b := fn.Routes[i], fn.Routes[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Method < b.Method
	})
	return fn, nil
}

// parseSchedule reads a Schedule event's Schedule (a ScheduleV2's
// ScheduleExpression), Input and Enabled or State. The expression is kept
// as written: whether it can be run is the runner's question (Interval).
func parseSchedule(function, event string, p *yaml.Node) (Schedule, error) {
	sch := Schedule{Function: function, Event: event, Input: Scalar(Get(p, "Input"))}
	sch.Expression = Scalar(Get(p, "Schedule"))
	if sch.Expression == "" {
		sch.Expression = Scalar(Get(p, "ScheduleExpression"))
	}
	if strings.TrimSpace(sch.Expression) == "" {
		return sch, fmt.Errorf("event %s: a schedule event needs a Schedule (ScheduleV2: ScheduleExpression)", event)
	}
	if Get(p, "Input") != nil && sch.Input == "" {
		return sch, fmt.Errorf("event %s: Input must be a JSON text (a quoted string)", event)
	}
	sch.Disabled = Scalar(Get(p, "Enabled")) == "false" || strings.EqualFold(Scalar(Get(p, "State")), "DISABLED")
	return sch, nil
}

// Interval is how often a rate() expression runs: rate(N unit) with N a
// positive whole number and unit minute, hour or day (singular for 1,
// plural otherwise, as EventBridge requires). Any other expression, a
// cron() or an at(), is an error naming it: a runner that takes only
// rates says which schedule it cannot run.
func (s Schedule) Interval() (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("function %s, schedule %s: %q %s", s.Function, s.Event, s.Expression, why)
	}
	inner, ok := strings.CutPrefix(s.Expression, "rate(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return bad("is not a rate(N minutes|hours|days) expression; only rates are run locally")
	}
	value, unit, ok := strings.Cut(strings.TrimSuffix(inner, ")"), " ")
	n, err := strconv.Atoi(value)
	if !ok || err != nil || n <= 0 || value != strconv.Itoa(n) {
		return bad("needs a positive whole number: rate(N unit)")
	}
	units := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}
	if n != 1 {
		unit, ok = strings.CutSuffix(unit, "s")
		if !ok {
			return bad("needs a plural unit (minutes, hours, days) for a value other than 1")
		}
	}
	d, ok := units[unit]
	if !ok {
		return bad("needs the unit minute(s), hour(s) or day(s), singular for 1")
	}
	if time.Duration(n) > math.MaxInt64/d {
		return bad("is too long")
	}
	return time.Duration(n) * d, nil
}

// Schedules lists every function's schedules, in function order.
func (t *Template) Schedules() []Schedule {
	var all []Schedule
	for _, f := range t.Functions {
		all = append(all, f.Schedules...)
	}
	return all
}

// Get returns the value of key in mapping n (following an alias), or nil:
// for readers of template.yaml parts this package does not model.
func Get(n *yaml.Node, key string) *yaml.Node {
	if n == nil {
		return nil
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

// Scalar returns n's value when it is a scalar, or "".
func Scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// Seq returns n's items when it is a sequence, or nil.
func Seq(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
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
			ev.Ref = Scalar(v.Content[1])
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

// Routes lists every function's routes, in function order.
func (t *Template) Routes() []Route {
	var all []Route
	for _, f := range t.Functions {
		all = append(all, f.Routes...)
	}
	return all
}
