package openapitest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Route is one API route of template.yaml.
type Route struct {
	Function string // the resource name, e.g. SensorsFunction
	Method   string // upper case, e.g. GET
	Path     string // e.g. /sensors/{id}
}

// String returns the route as "METHOD /path", as the tenant table names it.
func (r Route) String() string { return r.Method + " " + r.Path }

// FindTemplate returns the path of the repository's template.yaml, searched
// from the working directory upwards (tests run in their package directory).
func FindTemplate() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "template.yaml")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("template.yaml not found above the working directory")
		}
		dir = parent
	}
}

// TemplateRoutes returns every event of Type Api of every function in the
// SAM template at path, sorted by path then method. It reads the YAML node
// tree, so CloudFormation tags such as !Ref need no special handling.
func TemplateRoutes(path string) ([]Route, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty document", path)
	}
	var routes []Route
	resources := child(root.Content[0], "Resources")
	for i := 0; resources != nil && i+1 < len(resources.Content); i += 2 {
		name, res := resources.Content[i].Value, resources.Content[i+1]
		if v := child(res, "Type"); v == nil || v.Value != "AWS::Serverless::Function" {
			continue
		}
		events := child(child(res, "Properties"), "Events")
		for j := 0; events != nil && j+1 < len(events.Content); j += 2 {
			ev := events.Content[j+1]
			if t := child(ev, "Type"); t == nil || t.Value != "Api" {
				continue
			}
			props := child(ev, "Properties")
			p, m := child(props, "Path"), child(props, "Method")
			if p == nil || m == nil {
				return nil, fmt.Errorf("%s: %s event %s has no Path or Method", path, name, events.Content[j].Value)
			}
			routes = append(routes, Route{Function: name, Method: strings.ToUpper(m.Value), Path: p.Value})
		}
	}
	sort.Slice(routes, func(i, j int) bool {
		if routes[i].Path != routes[j].Path {
			return routes[i].Path < routes[j].Path
		}
		return routes[i].Method < routes[j].Method
	})
	return routes, nil
}

// child returns the value node of key in mapping node n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
