package app_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The access log line names the user of a valid token, and no one for a
// request without one or with a refused one; the handler sees the caller's
// address for the audit trail.
func TestAccessLogNamesTheUser(t *testing.T) {
	t.Parallel()
	jwt := apitest.MustJWT(t)
	p := tempwatch.Principal{UserID: auth.NewID(), Role: tempwatch.RoleAdmin}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	var address string
	h := app.Middleware(log, auth.NewVerifier(jwt), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		address = tempwatch.RemoteAddress(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, tt := range []struct {
		name, token, want string
	}{
		{"valid token", apitest.MustToken(t, jwt, p), p.UserID},
		{"no token", "", ""},
		{"refused token", "not-a-token", ""},
	} {
		buf.Reset()
		req := httptest.NewRequest("GET", "/anything", nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		var line struct {
			Msg    string `json:"msg"`
			UserID string `json:"user_id"`
		}
		require.NoError(t, json.Unmarshal(buf.Bytes(), &line), "%s: %s", tt.name, buf.String())
		assert.Equal(t, "request", line.Msg, tt.name)
		assert.Equal(t, tt.want, line.UserID, "%s: the access log's user_id", tt.name)
		assert.Equal(t, "192.0.2.1", address, "%s: httptest's remote address, without the port", tt.name)
	}
}
