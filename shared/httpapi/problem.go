// Package httpapi holds what every HTTP function shares: RFC 9457 problem
// responses, JSON bodies with limits, request ids and logging, and paging.
package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/tempwatch/tempwatch/shared/logging"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// statusByCode is the one table from error code to HTTP status.
var statusByCode = map[string]int{
	tempwatch.ECONFLICT:     http.StatusConflict,
	tempwatch.EINTERNAL:     http.StatusInternalServerError,
	tempwatch.EINVALID:      http.StatusBadRequest,
	tempwatch.ENOTFOUND:     http.StatusNotFound,
	tempwatch.EUNAUTHORIZED: http.StatusUnauthorized,
	tempwatch.EFORBIDDEN:    http.StatusForbidden,
	tempwatch.ETOOMANY:      http.StatusTooManyRequests,
	tempwatch.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	tempwatch.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// Status returns the HTTP status for an error code.
func Status(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Instance  string            `json:"instance,omitempty"`
	Code      string            `json:"code"`
	RequestID string            `json:"request_id,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"`
}

// Error writes err as application/problem+json. Internal errors are logged
// with their details; the caller sees a generic message and the request id.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := tempwatch.ErrorCode(err)
	status := Status(code)
	if code == tempwatch.EINTERNAL {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	p := Problem{
		Type:      "https://tempwatch.dev/problems/" + code,
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    tempwatch.ErrorMessage(err),
		Instance:  r.URL.Path,
		Code:      code,
		RequestID: logging.RequestID(r.Context()),
		Errors:    tempwatch.ErrorFields(err),
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}
