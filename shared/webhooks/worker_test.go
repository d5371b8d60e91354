package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/webhooks"
)

// Integration tier: the real PostgreSQL schema (migration 006's trigger
// makes the deliveries), the real worker and a real receiver on 127.0.0.1,
// which the tests allow explicitly.

var allowLoopback = webhooks.NewGuard(netip.MustParsePrefix("127.0.0.1/32"))

// clock is a fake clock the worker reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint on 127.0.0.1 answering the statuses it is
// given in turn (the last one from then on).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []received
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	rc := &receiver{statuses: statuses}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
		status := rc.statuses[min(len(rc.got), len(rc.statuses))-1]
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// fixture is a client with a sensor, in a fresh schema.
type fixture struct {
	env    *apitest.Env
	db     *pgxpool.Pool
	store  *postgres.WebhookStore
	sensor string
}

func newFixture(t *testing.T) *fixture {
	env := apitest.MustEnv(t)
	return &fixture{env: env, db: env.DB, store: postgres.NewWebhookStore(env.DB),
		sensor: pgtest.MustSensor(t, env.DB, env.ClientA, "fridge-1", "key-1")}
}

// webhook stores a webhook of client A to url through the store (so past
// the API's URL check), subscribed to every event.
func (fx *fixture) webhook(t *testing.T, url string) *tempwatch.Webhook {
	hook := &tempwatch.Webhook{ClientID: fx.env.ClientA, URL: url, Events: tempwatch.AlarmEventTypes,
		Enabled: true, Secret: webhooks.NewSecret()}
	require.NoError(t, fx.store.CreateWebhook(context.Background(), hook))
	return hook
}

// delivery returns the state, attempt count and next attempt of the only
// delivery of event.
func (fx *fixture) delivery(t *testing.T, event string) (state string, attempts int, next time.Time, created time.Time) {
	require.NoError(t, fx.db.QueryRow(context.Background(), `SELECT state, attempts, next_attempt_at, created_at
		FROM webhook_deliveries WHERE event_id = $1`, event).Scan(&state, &attempts, &next, &created))
	return state, attempts, next, created
}

func (fx *fixture) worker(t *testing.T, guard *webhooks.Guard, log *slog.Logger, c *clock, jitter float64) *webhooks.Worker {
	opts := webhooks.WorkerOptions{Timeout: 5 * time.Second, Jitter: func() float64 { return jitter }}
	if c != nil {
		opts.Now = c.Now
	}
	if log == nil {
		log = apitest.Logger(t)
	}
	return webhooks.NewWorker(fx.store, guard, log, opts)
}

func runOnce(t *testing.T, w *webhooks.Worker) int {
	n, err := w.RunOnce(context.Background())
	require.NoError(t, err)
	return n
}

// TestAlarmEventIsDeliveredSignedAndRetried creates a webhook through the
// API, inserts an alarm event by SQL as the evaluation would, and runs the
// worker on a fake clock against a receiver that answers 500, 500, 200:
// each attempt is signed (the third with the secret rotated meanwhile),
// retried on the schedule, and readable through the API.
func TestAlarmEventIsDeliveredSignedAndRetried(t *testing.T) {
	fx := newFixture(t)
	rc := newReceiver(t, 500, 500, 200)
	api := webhooks.NewHandler(fx.store, allowLoopback, apitest.Logger(t))
	url := rc.URL + "/hooks/tempwatch?token=receiver-token-5ecret"
	resp := apitest.Do(t, api, &fx.env.AdminA, "POST", "/webhooks", fmt.Sprintf(`{"url":%q}`, url))
	require.Equal(t, http.StatusCreated, resp.Status, string(resp.Body))
	var created struct {
		ID     string   `json:"id"`
		Secret string   `json:"secret"`
		Events []string `json:"events"`
	}
	resp.Decode(t, &created)
	assert.Equal(t, tempwatch.AlarmEventTypes, created.Events, "a new webhook gets every event type")

	event := pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmOpened)
	_, _, _, createdAt := fx.delivery(t, event)
	c := &clock{t: createdAt}
	var logs bytes.Buffer
	w := fx.worker(t, allowLoopback, slog.New(slog.NewTextHandler(&logs, nil)), c, 0)

	secret := created.Secret
	check := func(n int, at time.Time) {
		t.Helper()
		got := rc.requests()
		require.Len(t, got, n)
		r := got[n-1]
		assert.Equal(t, tempwatch.EventAlarmOpened, r.header.Get(webhooks.EventHeader))
		assert.True(t, tempwatch.IsUUID(r.header.Get(webhooks.DeliveryHeader)), r.header.Get(webhooks.DeliveryHeader))
		assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		assert.NoError(t, webhooks.Verify(r.header.Get(webhooks.SignatureHeader), secret, r.body, at, webhooks.DefaultTolerance),
			"attempt %d is signed with the webhook's secret at the attempt's time", n)
		var body struct {
			ID        string          `json:"id"`
			Type      string          `json:"type"`
			CreatedAt time.Time       `json:"created_at"`
			Alarm     json.RawMessage `json:"alarm"`
		}
		require.NoError(t, json.Unmarshal(r.body, &body))
		assert.Equal(t, event, body.ID)
		assert.Equal(t, tempwatch.EventAlarmOpened, body.Type)
		assert.False(t, body.CreatedAt.IsZero())
		assert.Contains(t, string(body.Alarm), fx.sensor, "the alarm as the event carries it")
	}

	assert.Equal(t, 1, runOnce(t, w))
	check(1, c.Now())
	assert.Zero(t, runOnce(t, w), "the retry is not due before its delay")
	state, attempts, next, _ := fx.delivery(t, event)
	assert.Equal(t, tempwatch.DeliveryPending, state)
	assert.Equal(t, 1, attempts)
	assert.Equal(t, createdAt.Add(webhooks.RetryDelay(1, 0)), next)

	c.Set(next)
	assert.Equal(t, 1, runOnce(t, w))
	check(2, c.Now())
	_, _, next, _ = fx.delivery(t, event)
	assert.Equal(t, c.Now().Add(webhooks.RetryDelay(2, 0)), next, "the second retry waits twice as long")

	resp = apitest.Do(t, api, &fx.env.AdminA, "POST", "/webhooks/"+created.ID+"/secret", "")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	old := secret
	resp.Decode(t, &created)
	secret = created.Secret
	require.NotEqual(t, old, secret)

	c.Set(next)
	assert.Equal(t, 1, runOnce(t, w))
	check(3, c.Now())
	assert.Error(t, webhooks.Verify(rc.requests()[2].header.Get(webhooks.SignatureHeader), old, rc.requests()[2].body, c.Now(), webhooks.DefaultTolerance),
		"the rotated-out secret no longer verifies")
	c.Set(c.Now().Add(48 * time.Hour))
	assert.Zero(t, runOnce(t, w), "a delivered event is not sent again")
	assert.Len(t, rc.requests(), 3)

	resp = apitest.Do(t, api, &fx.env.AdminA, "GET", "/webhooks/"+created.ID+"/deliveries", "")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var page struct {
		Items []tempwatch.WebhookDelivery `json:"items"`
	}
	resp.Decode(t, &page)
	require.Len(t, page.Items, 1)
	d := page.Items[0]
	assert.Equal(t, rc.requests()[0].header.Get(webhooks.DeliveryHeader), d.ID, "every attempt carries the delivery's id")
	assert.Equal(t, event, d.EventID)
	assert.Equal(t, tempwatch.EventAlarmOpened, d.EventType)
	assert.Equal(t, tempwatch.DeliveryDelivered, d.State)
	assert.Equal(t, 3, d.Attempts)
	assert.Nil(t, d.NextAttemptAt)
	require.NotNil(t, d.DeliveredAt)
	require.NotNil(t, d.LastStatus)
	assert.Equal(t, 200, *d.LastStatus)
	assert.Empty(t, d.LastError)
	var statuses []int
	for _, a := range d.AttemptLog {
		require.NotNil(t, a.Status)
		statuses = append(statuses, *a.Status)
	}
	assert.Equal(t, []int{500, 500, 200}, statuses)
	assert.Equal(t, "HTTP 500", d.AttemptLog[0].Error)

	for _, secret := range []string{old, secret, "receiver-token-5ecret"} {
		assert.NotContains(t, logs.String(), secret, "the worker's log holds no secret and no URL")
		assert.NotContains(t, string(resp.Body), secret, "the deliveries hold no secret and no URL")
	}
	assert.Contains(t, logs.String(), "webhook delivery attempt failed", "failures are logged")
}

// TestRetriesForADayThenFails answers every attempt with a 503 and moves the
// fake clock to each next attempt: the delivery fails on the first attempt
// made a day or more after it was created, and never before, with no
// jitter and with the most.
func TestRetriesForADayThenFails(t *testing.T) {
	for _, tt := range []struct {
		name         string
		jitter       float64
		wantAttempts int // 0: not checked
	}{
		{"no jitter", 0, 30},
		{"most jitter", 0.999, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			rc := newReceiver(t, http.StatusServiceUnavailable)
			fx.webhook(t, rc.URL)
			event := pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmCleared)
			_, _, _, created := fx.delivery(t, event)
			c := &clock{t: created}
			w := fx.worker(t, allowLoopback, nil, c, tt.jitter)
			var times []time.Time
			for range 100 {
				times = append(times, c.Now())
				require.Equal(t, 1, runOnce(t, w), "attempt %d at %s", len(times), c.Now().Sub(created))
				state, attempts, next, _ := fx.delivery(t, event)
				require.Equal(t, len(times), attempts)
				if state == tempwatch.DeliveryFailed {
					break
				}
				require.Equal(t, tempwatch.DeliveryPending, state)
				c.Set(next)
			}
			state, _, _, _ := fx.delivery(t, event)
			require.Equal(t, tempwatch.DeliveryFailed, state)
			n := len(times)
			assert.GreaterOrEqual(t, times[n-1].Sub(created), webhooks.GiveUpAfter, "the last attempt is a day or more after the event")
			assert.Less(t, times[n-2].Sub(created), webhooks.GiveUpAfter, "no attempt after the first one past a day")
			if tt.wantAttempts > 0 {
				assert.Equal(t, tt.wantAttempts, n)
			}
			assert.Len(t, rc.requests(), n)
			c.Set(c.Now().Add(30 * 24 * time.Hour))
			assert.Zero(t, runOnce(t, w), "a failed delivery is not attempted again")
		})
	}
}

// TestFanOut: an event becomes a delivery for each enabled webhook of its
// client subscribed to its type, and for no other.
func TestFanOut(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	subscribed := fx.webhook(t, "https://a.example.com/1")
	disabled := fx.webhook(t, "https://a.example.com/2")
	off := false
	_, err := fx.store.UpdateWebhook(ctx, disabled.ID, tempwatch.WebhookUpdate{Enabled: &off})
	require.NoError(t, err)
	other := fx.webhook(t, "https://a.example.com/3")
	cleared := []string{tempwatch.EventAlarmCleared}
	_, err = fx.store.UpdateWebhook(ctx, other.ID, tempwatch.WebhookUpdate{Events: &cleared})
	require.NoError(t, err)
	require.NoError(t, fx.store.CreateWebhook(ctx, &tempwatch.Webhook{ClientID: fx.env.ClientB, URL: "https://b.example.com/",
		Events: tempwatch.AlarmEventTypes, Enabled: true, Secret: webhooks.NewSecret()}))

	event := pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmOpened)
	rows, _ := fx.db.Query(ctx, `SELECT webhook_id::text FROM webhook_deliveries WHERE event_id = $1`, event)
	var got []string
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		got = append(got, id)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{subscribed.ID}, got)

	event = pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmCleared)
	var n int
	require.NoError(t, fx.db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE event_id = $1`, event).Scan(&n))
	assert.Equal(t, 2, n, "alarm.cleared goes to the webhook of every event and to the one of cleared only")
}

// TestHangingReceiverDoesNotBlockWriters holds a delivery's POST open at a
// receiver that does not answer while alarm events are written: the
// writer's transaction (the fan-out trigger included) commits at once, and
// the delivery in flight is leased, so no other worker takes it.
func TestHangingReceiverDoesNotBlockWriters(t *testing.T) {
	fx := newFixture(t)
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	fx.webhook(t, srv.URL)
	first := pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmOpened)
	w := webhooks.NewWorker(fx.store, allowLoopback, apitest.Logger(t), webhooks.WorkerOptions{Timeout: time.Minute})
	done := make(chan error, 1)
	go func() {
		_, err := w.RunOnce(context.Background())
		done <- err
	}()
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the delivery never reached the receiver")
	}

	// The receiver holds the POST open: write more events, as ingest would.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	second, err := pgtest.InsertAlarmEvent(ctx, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmCleared)
	require.NoError(t, err, "a writer is not held up by a delivery in flight")
	state, attempts, _, _ := fx.delivery(t, second)
	assert.Equal(t, tempwatch.DeliveryPending, state)
	assert.Zero(t, attempts)

	due, err := fx.store.TakeDueDeliveries(ctx, tempwatch.DeliveryTake{Now: time.Now(), Limit: 10, Lease: time.Minute})
	require.NoError(t, err)
	require.Len(t, due, 1, "only the new delivery is due: the one in flight is leased")
	assert.Equal(t, second, due[0].Event.ID)
	state, attempts, _, _ = fx.delivery(t, first)
	assert.Equal(t, tempwatch.DeliveryPending, state)
	assert.Zero(t, attempts, "the delivery in flight has no outcome yet")

	release <- struct{}{}
	require.NoError(t, <-done)
	state, attempts, _, _ = fx.delivery(t, first)
	assert.Equal(t, tempwatch.DeliveryDelivered, state)
	assert.Equal(t, 1, attempts)
}

// TestWorkerRefusesWhatTheGuardRefuses stores URLs past the API's check (as
// a DNS change or a narrowed allowance would leave them) and shows the
// worker's connection refused: a loopback address without the allowance,
// a name that resolves to loopback, and a redirect, never followed.
func TestWorkerRefusesWhatTheGuardRefuses(t *testing.T) {
	ctx := context.Background()
	rc := newReceiver(t, 200)
	_, port, _ := strings.Cut(strings.TrimPrefix(rc.URL, "http://"), ":")
	for _, tt := range []struct {
		name string
		url  string
	}{
		{"loopback address", rc.URL},
		{"name resolving to loopback", "http://localhost:" + port + "/"},
		{"IPv4-mapped loopback", "http://[::ffff:127.0.0.1]:" + port + "/"},
		{"IPv6 loopback", "http://[::1]:" + port + "/"},
		{"metadata service", "http://169.254.169.254/latest/meta-data/"},
		{"private", "http://10.0.0.1:8080/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			fx.webhook(t, tt.url)
			event := pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmOpened)
			w := fx.worker(t, webhooks.NewGuard(), nil, nil, 0)
			assert.Equal(t, 1, runOnce(t, w))
			var status *int
			var msg string
			require.NoError(t, fx.db.QueryRow(ctx, `SELECT a.status, a.error FROM webhook_attempts a
				JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.event_id = $1`, event).Scan(&status, &msg))
			assert.Nil(t, status)
			assert.Contains(t, msg, "refused")
			assert.NotContains(t, msg, "http://", "the attempt's error names the address, not the URL")
			state, attempts, _, _ := fx.delivery(t, event)
			assert.Equal(t, tempwatch.DeliveryPending, state, "a refusal is a failed attempt, retried")
			assert.Equal(t, 1, attempts)
		})
	}
	assert.Empty(t, rc.requests(), "no refused connection reached the receiver")

	t.Run("redirect", func(t *testing.T) {
		fx := newFixture(t)
		target := newReceiver(t, 200)
		for _, to := range []string{"http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:1/", target.URL} {
			redirect := httptest.NewServer(http.RedirectHandler(to, http.StatusFound))
			t.Cleanup(redirect.Close)
			fx.webhook(t, redirect.URL)
		}
		event := pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmOpened)
		w := fx.worker(t, allowLoopback, nil, nil, 0)
		assert.Equal(t, 3, runOnce(t, w))
		rows, _ := fx.db.Query(ctx, `SELECT a.status, a.error FROM webhook_attempts a
			JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.event_id = $1`, event)
		n := 0
		for rows.Next() {
			var status int
			var msg string
			require.NoError(t, rows.Scan(&status, &msg))
			assert.Equal(t, http.StatusFound, status)
			assert.Contains(t, msg, "redirects are not followed")
			n++
		}
		require.NoError(t, rows.Err())
		assert.Equal(t, 3, n)
		assert.Empty(t, target.requests(), "the redirect's target, even an allowed one, was not requested")
	})
}
