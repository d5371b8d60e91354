package sim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/simulator/sim"
)

// fakeAPI is the part of the REST API Setup uses: sensors it already holds
// (from an earlier run) answer 409 on create and get their key rotated.
type fakeAPI struct {
	mu       sync.Mutex
	existing map[string]string // device id -> sensor id
	rotated  []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == "POST" && r.URL.Path == "/clients":
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"c-1"}`))
	case r.Method == "POST" && r.URL.Path == "/sensors":
		var body struct {
			DeviceID string `json:"device_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		if _, ok := f.existing[body.DeviceID]; ok {
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"code":"conflict"}`))
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"s-new","device_key":"twk_new-` + body.DeviceID + `"}`))
	case r.Method == "GET" && r.URL.Path == "/sensors" && r.URL.Query().Get("client_id") == "c-1":
		var items []map[string]string
		for dev, id := range f.existing {
			items = append(items, map[string]string{"id": id, "device_id": dev})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"items": items, "has_more": false})
	case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/rotate-key"):
		id := strings.Split(r.URL.Path, "/")[2]
		f.rotated = append(f.rotated, id)
		_, _ = w.Write([]byte(`{"id":"` + id + `","device_key":"twk_rotated-` + id + `"}`))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestSetupGivesEverySensorAKey(t *testing.T) {
	api := &fakeAPI{existing: map[string]string{"sensor-002": "s-old"}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	fleet := sim.Fleet(1, 3, 1)
	require.NoError(t, (&sim.API{BaseURL: srv.URL, Token: "t"}).Setup(context.Background(), fleet))
	assert.Equal(t, "twk_new-sensor-001", fleet[0].Key)
	assert.Equal(t, "twk_rotated-s-old", fleet[1].Key, "a sensor from an earlier run gets a new key")
	assert.Equal(t, "twk_new-sensor-003", fleet[2].Key)
	assert.Equal(t, []string{"s-old"}, api.rotated)
	assert.Equal(t, "sim-client-1/sensor-001", fleet[0].Username())
}
