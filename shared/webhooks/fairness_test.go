package webhooks_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/webhooks"
)

// TestOneTenantsHangingReceiverStarvesOthers (review h-revb): client A's
// webhooks point at a receiver that never answers (a tarpit, or a firewall
// dropping packets); client B's one webhook answers at once. The worker
// takes due deliveries oldest first across all clients, 16 a round, and a
// round waits for its slowest POST (Timeout), so one round per scheduled
// run of 60 s with the default 10 s timeout: 16 attempts a minute for the
// whole installation. Here scaled by 1/50 (Timeout 200 ms, a run 1.2 s):
// after three scheduled runs B's delivery, made a moment after A's, has
// still not been attempted. At full scale a client with 10 such webhooks
// and ~80 alarm events a day keeps every other client's webhooks waiting
// indefinitely (each of its deliveries is retried ~30 times in 24 h).
func TestOneTenantsHangingReceiverStarvesOthers(t *testing.T) {
	fx := newFixture(t)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	t.Cleanup(func() { hang.CloseClientConnections(); hang.Close() })
	good := newReceiver(t, 200)

	for range 10 {
		fx.webhook(t, hang.URL+"/a")
	}
	for range 10 {
		pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmOpened)
	}
	sensorB := pgtest.MustSensor(t, fx.db, fx.env.ClientB, "freezer-b", "key-b")
	require.NoError(t, fx.store.CreateWebhook(context.Background(), &tempwatch.Webhook{ClientID: fx.env.ClientB,
		URL: good.URL + "/b", Events: tempwatch.AlarmEventTypes, Enabled: true, Secret: webhooks.NewSecret()}))
	pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientB, sensorB, tempwatch.EventAlarmOpened)

	w := webhooks.NewWorker(fx.store, allowLoopback, apitest.Logger(t), webhooks.WorkerOptions{Timeout: 200 * time.Millisecond})
	for run := range 3 { // three scheduled runs, one a "minute"
		ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
		res, err := w.Drain(ctx)
		cancel()
		require.NoError(t, err)
		t.Logf("run %d: attempted %d, more %v", run+1, res.Attempted, res.More)
	}
	assert.NotEmpty(t, good.requests(),
		"client B's delivery is attempted within three runs, whatever client A's receivers do")
}
