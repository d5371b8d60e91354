package webhooks_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/webhooks"
)

// TestDisabledWebhookIsSkippedAndReEnabledFailsStale (review h-revb): a
// disabled webhook's pending deliveries are not taken; re-enabling it fails
// those older than the retry window ("webhook disabled") instead of
// sending weeks-old events, and delivers the younger ones.
func TestDisabledWebhookIsSkippedAndReEnabledFailsStale(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	rc := newReceiver(t, 200)
	hook := fx.webhook(t, rc.URL+"/hook")
	old := pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmOpened)
	young := pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmCleared)
	off, on := false, true
	_, err := fx.store.UpdateWebhook(ctx, hook.ID, tempwatch.WebhookUpdate{Enabled: &off})
	require.NoError(t, err)
	// The old one waited past the retry window (as weeks of being disabled
	// would leave it), the young one a little.
	_, err = fx.db.Exec(ctx, `UPDATE webhook_deliveries SET created_at = now() - $2::interval, next_attempt_at = now() - $2::interval
		WHERE event_id = $1`, old, webhooks.GiveUpAfter+time.Minute)
	require.NoError(t, err)

	w := webhooks.NewWorker(fx.store, allowLoopback, apitest.Logger(t), webhooks.WorkerOptions{Timeout: 5 * time.Second})
	res, err := w.Drain(ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Attempted, "a disabled webhook's deliveries are not taken")
	assert.Empty(t, rc.requests())

	_, err = fx.store.UpdateWebhook(ctx, hook.ID, tempwatch.WebhookUpdate{Enabled: &on})
	require.NoError(t, err)
	var msg string
	var state string
	require.NoError(t, fx.db.QueryRow(ctx, `SELECT state, last_error FROM webhook_deliveries WHERE event_id = $1`, old).Scan(&state, &msg))
	assert.Equal(t, tempwatch.DeliveryFailed, state, "a delivery older than the retry window fails on re-enabling")
	assert.Equal(t, postgres.DisabledError, msg)
	state, _, _, _ = fx.delivery(t, young)
	assert.Equal(t, tempwatch.DeliveryPending, state)

	res, err = w.Drain(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Attempted)
	require.Len(t, rc.requests(), 1)
	assert.Equal(t, tempwatch.EventAlarmCleared, rc.requests()[0].header.Get(webhooks.EventHeader), "only the young delivery is sent")
	state, _, _, _ = fx.delivery(t, young)
	assert.Equal(t, tempwatch.DeliveryDelivered, state)
}

// TestWebhookDeletedDuringAttempt (review h-revb): a webhook deleted while
// its delivery's POST is in flight takes the delivery with it; recording
// the attempt is then a no-op, not an error that stops the run, and the
// run goes on with the other webhooks.
func TestWebhookDeletedDuringAttempt(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	doomed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	t.Cleanup(doomed.Close)
	gone := fx.webhook(t, doomed.URL+"/gone")
	rc := newReceiver(t, 200)
	fx.webhook(t, rc.URL+"/stays")
	first := pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmOpened)
	second := pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmCleared)

	// One attempt at a time: the run's later attempts come after the
	// deleted webhook's record.
	w := webhooks.NewWorker(fx.store, allowLoopback, apitest.Logger(t), webhooks.WorkerOptions{Timeout: time.Minute, Concurrency: 1})
	type result struct {
		res webhooks.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := w.Drain(ctx)
		done <- result{res, err}
	}()
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the doomed webhook's delivery never arrived")
	}
	require.NoError(t, fx.store.DeleteWebhook(ctx, gone.ID))
	close(release)
	r := <-done
	require.NoError(t, r.err, "a webhook deleted during its attempt does not stop the run")
	assert.Len(t, rc.requests(), 2, "the other webhook's deliveries are made in the same run")
	for _, ev := range []string{first, second} {
		var state string
		require.NoError(t, fx.db.QueryRow(ctx, `SELECT d.state FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
			WHERE d.event_id = $1 AND w.url = $2`, ev, rc.URL+"/stays").Scan(&state))
		assert.Equal(t, tempwatch.DeliveryDelivered, state)
	}
	var n int
	require.NoError(t, fx.db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1`, gone.ID).Scan(&n))
	assert.Zero(t, n, "the deleted webhook's deliveries went with it")
}

// TestRefusalIsLoggedForOperators: the address a refused webhook's host
// resolved to, which the client does not read, is in the worker's log at
// warn, for the operator.
func TestRefusalIsLoggedForOperators(t *testing.T) {
	fx := newFixture(t)
	fx.webhook(t, "http://localhost:8080/")
	pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmOpened)
	var logs bytes.Buffer
	w := fx.worker(t, webhooks.NewGuard(), slog.New(slog.NewTextHandler(&logs, nil)), nil, 0)
	assert.Equal(t, 1, runOnce(t, w))
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Regexp(t, `address="?(127\.0\.0\.1|\[::1\]):8080`, logs.String())
}
