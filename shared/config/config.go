// Package config reads program configuration from the environment through a
// getenv function, so tests pass a map instead of touching the process.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Getenv is the shape of os.Getenv.
type Getenv func(string) string

// MapEnv adapts a map to Getenv, for tests.
func MapEnv(m map[string]string) Getenv {
	return func(k string) string { return m[k] }
}

// Reader reads typed values and collects every problem, so start-up names all
// bad or missing variables at once instead of one per restart.
type Reader struct {
	getenv Getenv
	errs   []error
}

// NewReader returns a Reader over getenv.
func NewReader(getenv Getenv) *Reader { return &Reader{getenv: getenv} }

// Err returns every problem met so far, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Fail records a problem with name found by the caller's own parsing (msg
// must not quote secret values).
func (r *Reader) Fail(name, msg string) { r.fail(name, "%s", msg) }

func (r *Reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("config: %s %s", name, fmt.Sprintf(format, args...)))
}

func (r *Reader) lookup(name string) (string, bool) {
	v := strings.TrimSpace(r.getenv(name))
	return v, v != ""
}

// Required returns the value of name, recording an error when it is unset.
func (r *Reader) Required(name string) string {
	v, ok := r.lookup(name)
	if !ok {
		r.fail(name, "is required but not set")
	}
	return v
}

// Secret returns the value of name, recording an error when it is unset or
// shorter than minLen characters. The value is never quoted in an error.
func (r *Reader) Secret(name string, minLen int) string {
	v, ok := r.lookup(name)
	switch {
	case !ok:
		r.fail(name, "is required but not set")
	case len(v) < minLen:
		r.fail(name, "must be at least %d characters (it has %d)", minLen, len(v))
	}
	return v
}

// String returns the value of name, or def when unset.
func (r *Reader) String(name, def string) string {
	if v, ok := r.lookup(name); ok {
		return v
	}
	return def
}

// URL returns the value of name when it parses as a URL with one of the given
// schemes; def when unset. An empty def with no value records it as required.
func (r *Reader) URL(name, def string, schemes ...string) string {
	v, ok := r.lookup(name)
	if !ok {
		if def == "" {
			r.fail(name, "is required but not set")
		}
		return def
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" {
		// Never echo the value: URLs carry passwords.
		r.fail(name, "is not a valid URL")
		return def
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	r.fail(name, "has scheme %q, want one of %v", u.Scheme, schemes)
	return def
}

// Int returns name as an integer within [lo, hi], or def when unset.
func (r *Reader) Int(name string, def, lo, hi int) int {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(name, "= %q is not an integer", v)
		return def
	}
	if n < lo || n > hi {
		r.fail(name, "= %d is out of range [%d, %d]", n, lo, hi)
		return def
	}
	return n
}

// Duration returns name as a Go duration within [lo, hi], or def when unset.
func (r *Reader) Duration(name string, def, lo, hi time.Duration) time.Duration {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, "= %q is not a duration (e.g. 500ms, 30s, 5m)", v)
		return def
	}
	if d < lo || d > hi {
		r.fail(name, "= %s is out of range [%s, %s]", d, lo, hi)
		return def
	}
	return d
}

// Bool returns name as a boolean, or def when unset.
func (r *Reader) Bool(name string, def bool) bool {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, "= %q is not a boolean (true or false)", v)
		return def
	}
	return b
}

// OneOf returns name when it is one of allowed, or def when unset.
func (r *Reader) OneOf(name, def string, allowed ...string) string {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, "= %q is not one of %v", v, allowed)
	return def
}

// Exit is how every program reports a start-up failure: one line on stderr,
// "<program>: start-up failed: <err>" (as Lambda shows an init error), then
// exit status 1.
func Exit(program string, err error) {
	fmt.Fprintf(os.Stderr, "%s: start-up failed: %v\n", program, err)
	os.Exit(1)
}
