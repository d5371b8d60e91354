// Package tempwatch is the domain every other package serves: clients,
// sensors, readings, users, principals and roles, tokens, the ingest contract
// between the bridge and the ingest function, and the one error type the
// whole system speaks. It imports no other package of ours; the adapters
// (postgres, mongo, redis) implement its store interfaces.
package tempwatch

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status in httpapi.
const (
	ECONFLICT     = "conflict"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	ETOOMANY      = "too_many_requests"
	ETOOLARGE     = "too_large"
	EUNAVAILABLE  = "unavailable"
)

// Error is an application error: a stable code, a message safe to show to the
// caller, and, for validation failures, the message for each bad field.
type Error struct {
	Code    string
	Message string
	Fields  map[string]string
}

// Error describes e with its code, message and field errors, for logs.
func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return fmt.Sprintf("tempwatch error: code=%s message=%s", e.Code, e.Message)
	}
	return fmt.Sprintf("tempwatch error: code=%s message=%s fields=%v", e.Code, e.Message, e.Fields)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of err: the message of its
// *Error, or a generic one for internal errors, whose details stay in logs.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "An internal error occurred."
}

// ErrorFields returns the per-field messages of err's *Error, if any.
func ErrorFields(err error) map[string]string {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

// Validation collects per-field problems; Err returns an EINVALID *Error
// naming each of them, or nil when there are none.
type Validation map[string]string

// Add records msg for field, keeping the first message per field.
func (v Validation) Add(field, msg string) {
	if _, ok := v[field]; !ok {
		v[field] = msg
	}
}

// Err returns the collected problems as an error, or nil.
func (v Validation) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: "The request has invalid fields.", Fields: map[string]string(v)}
}

// Invalid is the EINVALID error of one bad field.
func Invalid(field, msg string) error { return Validation{field: msg}.Err() }
