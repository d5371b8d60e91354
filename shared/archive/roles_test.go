package archive_test

// Fast tier: the archive's rules over fake dead-letter, payload and
// measurement stores, no server.

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/archive"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// The dead letters of the fake archive (ids as the archive makes them): one
// of client A, one attributed to no client, and one of client A past its
// time to live.
const (
	letterA       = "000000000000000000000000000000a1"
	letterNobody  = "000000000000000000000000000000b2"
	letterExpired = "000000000000000000000000000000c3"
)

// archiveWorld is the fake archive's clock, its time to live, and the
// measurement of client A (id 42) whose raw payload it keeps.
type archiveWorld struct {
	tn  apitest.Tenants
	now time.Time
	ttl time.Duration
}

func newArchiveWorld() archiveWorld {
	return archiveWorld{tn: apitest.NewTenants(), now: time.Now().UTC().Truncate(time.Second), ttl: 24 * time.Hour}
}

func (aw archiveWorld) deps(log *slog.Logger) archive.Deps {
	letters := map[string]tempwatch.StoredDeadLetter{}
	for id, dl := range map[string]tempwatch.DeadLetter{
		letterA:       {ClientID: aw.tn.ClientA, ReceivedAt: aw.now.Add(-time.Minute)},
		letterNobody:  {ReceivedAt: aw.now.Add(-time.Minute)},
		letterExpired: {ClientID: aw.tn.ClientA, ReceivedAt: aw.now.Add(-aw.ttl - time.Minute)},
	} {
		dl.MessageID, dl.Reason, dl.Topic, dl.Source, dl.Raw, dl.Size = id, "payload is not JSON", "tempwatch/a/sensors/d/readings", "mqtt", []byte("{"), 1
		letters[id] = tempwatch.StoredDeadLetter{ID: id, DeadLetter: dl, Head: dl.Raw}
	}
	m := &tempwatch.Reading{ID: 42, SensorID: "6f1c1c55-0d4b-4a57-9b0e-4a3c1c6a9d10", ClientID: aw.tn.ClientA, Value: 21.5, MeasuredAt: aw.now.Add(-time.Hour), CreatedAt: aw.now}
	return archive.Deps{
		DeadLetters: &mock.DeadLetterReader{
			FindDeadLettersFn: func(_ context.Context, f tempwatch.DeadLetterFilter) ([]tempwatch.StoredDeadLetter, error) {
				var out []tempwatch.StoredDeadLetter
				for _, d := range letters {
					if (f.AllClients || d.ClientID == f.ClientID) && !d.ReceivedAt.Before(f.Since) {
						out = append(out, d)
					}
				}
				return out, nil
			},
			FindDeadLetterByIDFn: func(_ context.Context, id string) (tempwatch.StoredDeadLetter, error) {
				if d, ok := letters[id]; ok {
					return d, nil
				}
				return tempwatch.StoredDeadLetter{}, tempwatch.NotFound("Dead letter")
			},
		},
		Payloads: &mock.PayloadFinder{FindPayloadFn: func(_ context.Context, sensorID string, at time.Time) (tempwatch.RawPayload, error) {
			return tempwatch.RawPayload{SensorID: sensorID, MeasuredAt: at, Topic: "tempwatch/a/sensors/d/readings", Source: "mqtt",
				ReceivedAt: at, Raw: []byte(`{"value":21.5}`)}, nil
		}},
		Measurements: &mock.ReadingService{FindReadingByIDFn: func(_ context.Context, id string) (*tempwatch.Reading, error) {
			if id != "42" {
				return nil, tempwatch.NotFound("Measurement")
			}
			return m, nil
		}},
		TTL: aw.ttl,
		Log: log,
		Now: func() time.Time { return aw.now },
	}
}

func TestArchiveRolesFast(t *testing.T) {
	t.Parallel()
	aw := newArchiveWorld()
	apitest.CheckRoles(t, "ArchiveFunction", aw.tn, func(log *slog.Logger, _ *apitest.Writes) http.Handler {
		return archive.NewHandler(aw.deps(log))
	}, []apitest.RoleCase{
		{Route: "GET /dead-letters", Want: [5]int{200, 200, 200, 200, 401}},
		{Route: "GET /dead-letters/{id}", Path: "/dead-letters/" + letterA, Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "GET /dead-letters/{id}", Name: "GET /dead-letters/{id} of no client", Path: "/dead-letters/" + letterNobody,
			Want: [5]int{200, 404, 404, 404, 401}},
		{Route: "GET /dead-letters/{id}", Name: "GET /dead-letters/{id} past its time to live", Path: "/dead-letters/" + letterExpired,
			Want: [5]int{404, 404, 404, 404, 401}},
		{Route: "GET /measurements/{id}/raw", Path: "/measurements/42/raw", Want: [5]int{200, 200, 200, 404, 401}},
		{Route: "GET /measurements/{id}/raw", Name: "GET /measurements/{id}/raw of no measurement", Path: "/measurements/43/raw",
			Want: [5]int{404, 404, 404, 404, 401}},
	})
}

// TestDeadLetterListScopeFast: the filter each caller's list reaches the
// archive with, and the letters it then shows.
func TestDeadLetterListScopeFast(t *testing.T) {
	t.Parallel()
	aw := newArchiveWorld()
	tests := []struct {
		name  string
		as    int
		query string
		want  *tempwatch.DeadLetterFilter // nil: the archive is not asked
		shown []string
	}{
		{"admin, every client", apitest.AsAdmin, "", &tempwatch.DeadLetterFilter{AllClients: true}, []string{letterA, letterNobody}},
		{"admin, client A", apitest.AsAdmin, "?client_id=" + aw.tn.ClientA, &tempwatch.DeadLetterFilter{ClientID: aw.tn.ClientA}, []string{letterA}},
		{"client_admin of A", apitest.AsAdminA, "", &tempwatch.DeadLetterFilter{ClientID: aw.tn.ClientA}, []string{letterA}},
		{"viewer of A, client A", apitest.AsViewerA, "?client_id=" + aw.tn.ClientA, &tempwatch.DeadLetterFilter{ClientID: aw.tn.ClientA}, []string{letterA}},
		{"viewer of A, client B", apitest.AsViewerA, "?client_id=" + aw.tn.ClientB, nil, nil},
		{"client_admin of B", apitest.AsAdminB, "", &tempwatch.DeadLetterFilter{ClientID: aw.tn.ClientB}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := aw.deps(apitest.Logger(t))
			var asked []tempwatch.DeadLetterFilter
			reader := d.DeadLetters.(*mock.DeadLetterReader)
			find := reader.FindDeadLettersFn
			reader.FindDeadLettersFn = func(ctx context.Context, f tempwatch.DeadLetterFilter) ([]tempwatch.StoredDeadLetter, error) {
				asked = append(asked, f)
				return find(ctx, f)
			}
			p, _ := aw.tn.Principal(tt.as)
			resp := apitest.Do(t, archive.NewHandler(d), &p, "GET", "/dead-letters"+tt.query, "")
			require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
			if tt.want == nil {
				assert.Empty(t, asked)
			} else if assert.Len(t, asked, 1) {
				assert.Equal(t, tt.want.ClientID, asked[0].ClientID)
				assert.Equal(t, tt.want.AllClients, asked[0].AllClients)
				assert.Equal(t, aw.now.Add(-aw.ttl), asked[0].Since, "letters past their time to live are not asked for")
			}
			var page struct {
				Items []struct {
					ID string `json:"id"`
				} `json:"items"`
			}
			resp.Decode(t, &page)
			var shown []string
			for _, it := range page.Items {
				shown = append(shown, it.ID)
			}
			assert.ElementsMatch(t, tt.shown, shown)
		})
	}
}

func TestArchiveStoreFailuresFast(t *testing.T) {
	t.Parallel()
	aw := newArchiveWorld()
	t.Run("dead letter", func(t *testing.T) {
		apitest.CheckStoreFailures(t, aw.tn.Admin, "GET", "/dead-letters/"+letterA, "", func(log *slog.Logger, err error) http.Handler {
			d := aw.deps(log)
			d.DeadLetters.(*mock.DeadLetterReader).FindDeadLetterByIDFn = func(context.Context, string) (tempwatch.StoredDeadLetter, error) {
				return tempwatch.StoredDeadLetter{}, err
			}
			return archive.NewHandler(d)
		})
	})
	t.Run("measurement", func(t *testing.T) {
		apitest.CheckStoreFailures(t, aw.tn.ViewerA, "GET", "/measurements/42/raw", "", func(log *slog.Logger, err error) http.Handler {
			d := aw.deps(log)
			d.Measurements.(*mock.ReadingService).FindReadingByIDFn = func(context.Context, string) (*tempwatch.Reading, error) {
				return nil, err
			}
			return archive.NewHandler(d)
		})
	})
}
