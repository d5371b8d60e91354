package schedule_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
	"github.com/tempwatch/tempwatch/infra/gateway/schedule"
)

func TestPlan(t *testing.T) {
	schedules := []sam.Schedule{
		{Function: "archive", Event: "Expire", Expression: "rate(1 hour)", Input: `{"task":"x"}`},
		{Function: "archive", Event: "Off", Expression: "cron(0 3 * * ? *)", Disabled: true},
		{Function: "silence", Event: "Sweep", Expression: "rate(1 minute)"},
	}
	runs, err := schedule.Plan(schedules, 0)
	require.NoError(t, err)
	require.Len(t, runs, 2, "a disabled schedule is not run, whatever its expression")
	assert.Equal(t, time.Hour, runs[0].Every)
	assert.Equal(t, time.Minute, runs[1].Every)

	runs, err = schedule.Plan(schedules, 200*time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, 200*time.Millisecond, runs[0].Every)
	assert.Equal(t, 200*time.Millisecond, runs[1].Every)

	_, err = schedule.Plan(append(schedules, sam.Schedule{Function: "nightly", Event: "Nightly", Expression: "cron(0 3 * * ? *)"}), time.Second)
	require.Error(t, err, "a scale does not make a cron runnable")
	assert.Contains(t, err.Error(), `template.yaml: function nightly, schedule Nightly: "cron(0 3 * * ? *)"`)
}

func TestPayload(t *testing.T) {
	at := time.Date(2026, 3, 4, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	assert.Equal(t, `{"task":"x"}`, string(schedule.Payload(schedule.Run{Schedule: sam.Schedule{Function: "archive", Input: `{"task":"x"}`}}, at)))

	var ev events.EventBridgeEvent
	require.NoError(t, json.Unmarshal(schedule.Payload(schedule.Run{Schedule: sam.Schedule{Function: "silence", Event: "Sweep"}}, at), &ev))
	assert.Equal(t, "aws.events", ev.Source)
	assert.Equal(t, "Scheduled Event", ev.DetailType)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, ev.ID)
	assert.True(t, at.Equal(ev.Time), "time %v, want %v", ev.Time, at)
	assert.Equal(t, []string{"arn:aws:events:us-east-1:000000000000:rule/silence-Sweep"}, ev.Resources)
	assert.JSONEq(t, `{}`, string(ev.Detail))
}

// invoker records invocations on calls; fail makes them fail.
type invoker struct {
	calls chan string
	fail  error
}

func (i *invoker) Invoke(_ context.Context, function string, payload []byte) ([]byte, error) {
	i.calls <- function + " " + string(payload)
	return nil, i.fail
}

func TestStartInvokesEachScheduleUntilStop(t *testing.T) {
	inv := &invoker{calls: make(chan string, 100), fail: errors.New("boom")}
	var mu sync.Mutex
	var logged []string
	s := schedule.Start([]schedule.Run{
		{Schedule: sam.Schedule{Function: "a", Event: "A", Input: `{"n":1}`}, Every: 10 * time.Millisecond},
		{Schedule: sam.Schedule{Function: "b", Event: "B", Input: `{"n":2}`}, Every: 10 * time.Millisecond},
	}, inv, func(format string, args ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(format, args...))
		mu.Unlock()
	})
	seen := map[string]int{}
	for seen[`a {"n":1}`] < 2 || seen[`b {"n":2}`] < 2 {
		select {
		case c := <-inv.calls:
			seen[c]++
		case <-time.After(10 * time.Second):
			t.Fatalf("schedules invoked %v, want each twice", seen)
		}
	}
	s.Stop()
	n := len(inv.calls)
	assert.Equal(t, n, len(inv.calls), "no invocation after Stop")
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, logged, "a: schedule A failed: boom")
}
