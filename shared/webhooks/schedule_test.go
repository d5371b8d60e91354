package webhooks_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/webhooks"
)

// Fast tier: the retry schedule and the scheduled event, over a queue with
// nothing due.

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		n      int
		jitter float64
		want   time.Duration
	}{
		{1, 0, time.Minute},
		{2, 0, 2 * time.Minute},
		{6, 0, 32 * time.Minute},
		{7, 0, time.Hour},
		{40, 0, time.Hour},
		{1, 0.5, 54 * time.Second},
		{7, 0.999, time.Hour - time.Duration(0.2*0.999*float64(time.Hour))},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, webhooks.RetryDelay(tt.n, tt.jitter), "RetryDelay(%d, %v)", tt.n, tt.jitter)
	}
	created := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	state, next := webhooks.NextState(created, created.Add(webhooks.GiveUpAfter-time.Second), 29, 0)
	assert.Equal(t, tempwatch.DeliveryPending, state, "just short of a day: retried")
	assert.Equal(t, created.Add(webhooks.GiveUpAfter-time.Second+time.Hour), next)
	state, _ = webhooks.NextState(created, created.Add(webhooks.GiveUpAfter), 30, 0)
	assert.Equal(t, tempwatch.DeliveryFailed, state, "a day after: given up")
}

// emptyQueue has nothing due.
type emptyQueue struct{ taken int }

func (q *emptyQueue) TakeDueDeliveries(context.Context, tempwatch.DeliveryTake) ([]*tempwatch.DueDelivery, error) {
	q.taken++
	return nil, nil
}

func (q *emptyQueue) RecordDeliveryAttempt(context.Context, tempwatch.DeliveryOutcome) error {
	return nil
}

func TestHandleEvent(t *testing.T) {
	q := &emptyQueue{}
	w := webhooks.NewWorker(q, webhooks.NewGuard(), apitest.Logger(t), webhooks.WorkerOptions{})
	out, err := w.HandleEvent(context.Background(), json.RawMessage(`{"task":"deliver-webhooks"}`))
	require.NoError(t, err)
	assert.Equal(t, webhooks.Result{}, out)
	assert.Equal(t, 1, q.taken)

	for _, ev := range []string{`{}`, `{"task":"expire-dead-letters"}`, `[]`, `{"source":"aws.events"}`} {
		_, err := w.HandleEvent(context.Background(), json.RawMessage(ev))
		assert.Error(t, err, "HandleEvent(%s)", ev)
	}
	assert.Equal(t, 1, q.taken, "a wrong event takes nothing")

	lambda, cancel := context.WithTimeout(context.Background(), time.Minute) // template.yaml's Timeout
	defer cancel()
	out, err = w.HandleEvent(lambda, json.RawMessage(`{"task":"deliver-webhooks"}`))
	require.NoError(t, err)
	assert.Equal(t, webhooks.Result{}, out)
	assert.Equal(t, 2, q.taken, "a run within the function's timeout takes what is due")

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	out, err = w.HandleEvent(ctx, json.RawMessage(`{"task":"deliver-webhooks"}`))
	require.NoError(t, err)
	assert.Equal(t, webhooks.Result{More: true}, out, "an invocation too close to its deadline leaves the work to the next")
}
