package webhooks_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/webhooks"
)

// TestAllowedTimeoutStillDelivers (review h-revb): functions/notify accepts
// WEBHOOK_TIMEOUT from 1 s to 1 min and WEBHOOK_CONCURRENCY from 1 to 32,
// and the function runs 60 s (template.yaml). Drain runs a round only when
// a whole round (ceil(16/concurrency) x timeout) fits in what is left of
// the invocation, so WEBHOOK_TIMEOUT=15s (or 10s with concurrency 1) makes
// every scheduled run return at once, More=true, no error: nothing is ever
// delivered, and nothing says so.
func TestAllowedTimeoutStillDelivers(t *testing.T) {
	fx := newFixture(t)
	rc := newReceiver(t, 200)
	fx.webhook(t, rc.URL+"/hook")
	pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmOpened)

	w := webhooks.NewWorker(fx.store, allowLoopback, apitest.Logger(t), webhooks.WorkerOptions{Timeout: 15 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // the notify function's timeout
	defer cancel()
	res, err := w.Drain(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Attempted, "a due delivery is attempted by a scheduled run (result %+v)", res)
	assert.Len(t, rc.requests(), 1)
}
