// Package apigw plays API Gateway's part for local runs: it matches an HTTP
// request to a template route, turns it into the REST API proxy event a
// function receives on AWS, invokes the function through the Lambda Invoke
// API (as served by the runtime interface emulator), and writes the proxy
// response back as HTTP.
package apigw

import (
	"strings"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
)

// Router finds the template route for a method and path, preferring, as API
// Gateway does, literal segments over {params} over a greedy {proxy+}, and an
// exact method over ANY.
type Router struct {
	routes []compiled
}

type compiled struct {
	route    sam.Route
	segments []string
}

// NewRouter compiles routes.
func NewRouter(routes []sam.Route) *Router {
	r := &Router{}
	for _, rt := range routes {
		r.routes = append(r.routes, compiled{route: rt, segments: split(rt.Path)})
	}
	return r
}

// Match returns the best route for method and path with its path parameters.
func (r *Router) Match(method, path string) (sam.Route, map[string]string, bool) {
	segs := split(path)
	var (
		best      sam.Route
		bestPar   map[string]string
		bestScore = -1
	)
	for _, c := range r.routes {
		if c.route.Method != method && c.route.Method != "ANY" {
			continue
		}
		params, score, ok := matchSegments(c.segments, segs)
		if !ok {
			continue
		}
		score *= 2
		if c.route.Method == method {
			score++
		}
		if score > bestScore {
			best, bestPar, bestScore = c.route, params, score
		}
	}
	return best, bestPar, bestScore >= 0
}

// Allowed reports whether any route matches path for some method.
func (r *Router) Allowed(path string) bool {
	segs := split(path)
	for _, c := range r.routes {
		if _, _, ok := matchSegments(c.segments, segs); ok {
			return true
		}
	}
	return false
}

// matchSegments scores a match: 2 points per literal segment, 1 per {param},
// none for {proxy+}.
func matchSegments(pattern, segs []string) (map[string]string, int, bool) {
	params := map[string]string{}
	score := 0
	for i, p := range pattern {
		name, isParam := strings.CutPrefix(p, "{")
		if isParam {
			name = strings.TrimSuffix(name, "}")
		}
		if isParam && strings.HasSuffix(name, "+") {
			if i >= len(segs) {
				return nil, 0, false
			}
			params[strings.TrimSuffix(name, "+")] = strings.Join(segs[i:], "/")
			return params, score, true
		}
		if i >= len(segs) {
			return nil, 0, false
		}
		switch {
		case isParam:
			if segs[i] == "" {
				return nil, 0, false
			}
			params[name] = segs[i]
			score++
		case p == segs[i]:
			score += 2
		default:
			return nil, 0, false
		}
	}
	if len(pattern) != len(segs) {
		return nil, 0, false
	}
	return params, score, true
}

func split(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}
