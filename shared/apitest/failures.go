package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// StoreFailure is an error a fake store returns, and the status and code
// the caller must get for it.
type StoreFailure struct {
	Name   string
	Err    error
	Status int
	Code   string
}

// driverDetail is what a driver's error may say that no caller may read.
const driverDetail = "dial tcp 10.20.30.40:5432: password authentication failed for user tw_owner"

// StoreFailures are the failures every handler answers through the one
// status table: domain errors by their code, wrapped or not; anything else
// as a 500 whose details reach the log but not the caller.
var StoreFailures = []StoreFailure{
	{"not found", tempwatch.NotFound("Thing"), http.StatusNotFound, tempwatch.ENOTFOUND},
	{"conflict", tempwatch.Errorf(tempwatch.ECONFLICT, "The thing changed meanwhile."), http.StatusConflict, tempwatch.ECONFLICT},
	{"invalid field", tempwatch.Invalid("name", "is required"), http.StatusBadRequest, tempwatch.EINVALID},
	{"forbidden", tempwatch.Errorf(tempwatch.EFORBIDDEN, "Not yours to change."), http.StatusForbidden, tempwatch.EFORBIDDEN},
	{"unavailable", tempwatch.Errorf(tempwatch.EUNAVAILABLE, "Try again shortly."), http.StatusServiceUnavailable, tempwatch.EUNAVAILABLE},
	{"wrapped conflict", fmt.Errorf("update thing: %w", tempwatch.Errorf(tempwatch.ECONFLICT, "The slug is taken.")),
		http.StatusConflict, tempwatch.ECONFLICT},
	{"driver error", errors.New(driverDetail), http.StatusInternalServerError, tempwatch.EINTERNAL},
	{"wrapped driver error", fmt.Errorf("find thing: %w", errors.New(driverDetail)), http.StatusInternalServerError, tempwatch.EINTERNAL},
	{"deadline", fmt.Errorf("find thing: %w", context.DeadlineExceeded), http.StatusInternalServerError, tempwatch.EINTERNAL},
}

// CheckStoreFailures serves method path body as p, for each of
// StoreFailures on a fresh handler from newAPI over a store that fails with
// it, behind app.Middleware. It checks the status and the problem body: its
// code, its message (the error's own for a domain error; for any other a
// generic one that repeats nothing of the error), its field errors, its
// request id; and that an internal error, and only that, is logged with its
// details. Responses are not checked against the OpenAPI document: a failure
// may be injected where the real store could not fail that way.
func CheckStoreFailures(t *testing.T, p tempwatch.Principal, method, path, body string, newAPI func(log *slog.Logger, fail error) http.Handler) {
	t.Helper()
	jwt := MustJWT(t)
	for _, f := range StoreFailures {
		t.Run(f.Name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			h := app.Middleware(log, auth.NewVerifier(jwt), newAPI(log, f.Err))
			req := newRequest(method, path, body)
			req.Header.Set("Authorization", "Bearer "+MustToken(t, jwt, p))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			require.Equal(t, f.Status, rec.Code, "%s %s with the store failing %v: %s", method, path, f.Err, rec.Body)
			assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
			var prob httpapi.Problem
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &prob), rec.Body.String())
			assert.Equal(t, f.Code, prob.Code)
			assert.Equal(t, f.Status, prob.Status)
			assert.NotEmpty(t, prob.RequestID)
			assert.Equal(t, rec.Header().Get("X-Request-Id"), prob.RequestID, "the problem names the request's id")
			assert.Equal(t, tempwatch.ErrorFields(f.Err), prob.Errors)
			if f.Code != tempwatch.EINTERNAL {
				assert.Equal(t, tempwatch.ErrorMessage(f.Err), prob.Detail)
				assert.NotContains(t, logs.String(), "request failed", "a domain error is the caller's, not an incident")
				return
			}
			assert.Equal(t, "An internal error occurred.", prob.Detail)
			for _, secret := range []string{f.Err.Error(), "10.20.30.40", "tw_owner", "password", "deadline", "find thing"} {
				assert.NotContains(t, rec.Body.String(), secret, "an internal error's details stay out of the response")
			}
			assert.Contains(t, logs.String(), "request failed")
			assert.True(t, strings.Contains(logs.String(), f.Err.Error()), "the log has the internal error's details: %s", logs.String())
		})
	}
}
