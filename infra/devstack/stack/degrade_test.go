package stack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/devstack/stack/stacktest"
	"github.com/tempwatch/tempwatch/infra/simulator/sim"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// degradeSamples is how many requests each median of TestRedisDownCostsLittle
// is taken over: enough that the shared 2-core machine's noise does not
// decide it.
const degradeSamples = 11

// ingestBatch is the readings per POST /ingest/readings when ingest's rate
// is measured.
const ingestBatch = 50

// TestRedisDownCostsLittle runs the real functions against a private
// redis-server, measures the median latency of GET latest, login, a list
// route and an ingest batch with Redis up, killed, and restarted, and
// requires every route with Redis killed to answer within its latency with
// Redis up plus 50 ms, and ingest to keep its rate within 20%.
func TestRedisDownCostsLittle(t *testing.T) {
	srv := redistest.MustServer(t)
	env := stacktest.Env(t)
	env["REDIS_URL"] = srv.URL() // the private one, to kill
	delete(env, "REDIS_PREFIX")
	dbURL, jwtKeys := env["DATABASE_URL"], env["JWT_SIGNING_KEYS"]
	s, _ := stacktest.MustStart(t, stack.Config{Root: "../../..", Instances: 1,
		Only: []string{"auth", "clients", "sensors", "readings", "ingest"}, Env: env})
	ctx := context.Background()

	api := &sim.API{BaseURL: s.APIURL(), Token: stacktest.MustAdminToken(t, dbURL, jwtKeys)}
	fleet := sim.Fleet(1, 1, 1)
	require.NoError(t, api.Setup(ctx, fleet))
	var sensors struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	resp, body := do(t, "GET", s.APIURL()+"/sensors", nil, bearer(api.Token))
	require.Equal(t, 200, resp.StatusCode, string(body))
	require.NoError(t, json.Unmarshal(body, &sensors))
	require.Len(t, sensors.Items, 1)
	sensorID := sensors.Items[0].ID
	email, password := mustLoginUser(t, dbURL)

	at := time.Now().Add(-time.Hour)
	routes := []route{
		{fmt.Sprintf("POST /ingest/readings (%d readings)", ingestBatch), func() (*http.Response, []byte) {
			items := make([]string, ingestBatch)
			for i := range items {
				at = at.Add(time.Millisecond)
				items[i] = fmt.Sprintf(`{"value":21.5,"ts":%q}`, at.UTC().Format(time.RFC3339Nano))
			}
			h := jsonType()
			h.Set("X-Device-Key", fleet[0].Key)
			return do(t, "POST", s.APIURL()+"/ingest/readings", strings.NewReader("["+strings.Join(items, ",")+"]"), h)
		}, 200},
		{"GET /sensors/{id}/readings/latest", func() (*http.Response, []byte) {
			return do(t, "GET", s.APIURL()+"/sensors/"+sensorID+"/readings/latest", nil, bearer(api.Token))
		}, 200},
		{"POST /auth/login", func() (*http.Response, []byte) {
			return do(t, "POST", s.APIURL()+"/auth/login",
				strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)), jsonType())
		}, 200},
		{"GET /sensors", func() (*http.Response, []byte) {
			return do(t, "GET", s.APIURL()+"/sensors", nil, bearer(api.Token))
		}, 200},
	}
	measure := func(phase string) []time.Duration {
		medians := make([]time.Duration, len(routes))
		for i, r := range routes {
			var took []time.Duration
			for range degradeSamples {
				start := time.Now()
				resp, body := r.send()
				took = append(took, time.Since(start))
				require.Equal(t, r.want, resp.StatusCode, "%s, Redis %s: %s", r.name, phase, body)
			}
			slices.Sort(took)
			medians[i] = took[len(took)/2]
		}
		return medians
	}

	const ingest = 0 // the first route, so latest has a reading
	measure("up (warming)")
	// The machine is shared, so a round whose figures another load skewed
	// is measured again, up to three rounds; the last one decides.
	var up, down, back []time.Duration
	within := func() bool {
		for i := range routes {
			if down[i] > up[i]+50*time.Millisecond || back[i] > up[i]+50*time.Millisecond {
				return false
			}
		}
		return rate(down[ingest]) >= 0.8*rate(up[ingest])
	}
	for round := 1; round <= 3; round++ {
		up = measure("up")
		srv.Kill()
		down = measure("killed")
		srv.Restart()
		// Back means the functions use Redis again: ingest's offer lands.
		rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
		require.Eventually(t, func() bool {
			routes[ingest].send()
			return rdb.Exists(ctx, redis.DefaultPrefix+"sensor:"+sensorID+":latest").Val() == 1
		}, 30*time.Second, 50*time.Millisecond, "the functions find the restarted Redis")
		_ = rdb.Close()
		back = measure("restarted")
		t.Logf("round %d:\n%s", round, degradeTable(routes[:], up, down, back))
		if within() {
			break
		}
	}
	for i, r := range routes {
		assert.LessOrEqual(t, down[i], up[i]+50*time.Millisecond, "%s with Redis killed", r.name)
		assert.LessOrEqual(t, back[i], up[i]+50*time.Millisecond, "%s with Redis restarted", r.name)
	}
	assert.GreaterOrEqual(t, rate(down[ingest]), 0.8*rate(up[ingest]), "ingest's rate with Redis killed")
}

// route is one request TestRedisDownCostsLittle times.
type route struct {
	name string
	send func() (*http.Response, []byte)
	want int
}

// rate is ingest's rate, in readings per second, at d per batch.
func rate(d time.Duration) float64 { return ingestBatch / d.Seconds() }

// degradeTable is the figures of one round as docs/benchmarks.md shows them.
func degradeTable(routes []route, up, down, back []time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| median of %d requests | Redis up | killed | restarted |\n|---|---|---|---|\n", degradeSamples)
	for i, r := range routes {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.name, ms(up[i]), ms(down[i]), ms(back[i]))
	}
	fmt.Fprintf(&b, "| ingest rate (readings/s) | %.0f | %.0f | %.0f |\n", rate(up[0]), rate(down[0]), rate(back[0]))
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

func jsonType() http.Header { return http.Header{"Content-Type": {"application/json"}} }

// mustLoginUser creates an admin with a real password hash in the stack's
// database and returns their credentials.
func mustLoginUser(t *testing.T, dbURL string) (email, password string) {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, dbURL)
	require.NoError(t, err)
	defer db.Close()
	password = "correct horse battery staple " + auth.NewID()
	hash, err := auth.HashPassword(password)
	require.NoError(t, err)
	u := &tempwatch.User{Email: "login-" + auth.NewID() + "@devstack.test", Name: "Login", Role: tempwatch.RoleAdmin, PasswordHash: hash}
	require.NoError(t, postgres.NewUserStore(db).CreateUser(ctx, u))
	return u.Email, password
}
