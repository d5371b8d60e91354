package stack_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/devstack/stack/stacktest"
)

// recordedEvents reads the events the echofn fixture recorded (ECHO_EVENTS).
func recordedEvents(tb testing.TB, file string) []json.RawMessage {
	tb.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(tb, err)
	var out []json.RawMessage
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out = append(out, json.RawMessage(sc.Text()))
	}
	return out
}

// Every enabled schedule of a served function is invoked on its own, with
// its Input, or without one with EventBridge's Scheduled Event.
func TestSchedulesInvokeTheirFunctions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "events")
	s, logs := stacktest.MustStart(t, stack.Config{Root: "testdata", Instances: 1, ScheduleEvery: 100 * time.Millisecond,
		Env: map[string]string{"MQTT_URL": "tcp://127.0.0.1:1883", "MONGODB_URL": "mongodb://127.0.0.1:1/", "ECHO_EVENTS": file}})

	var runs []string
	for _, r := range s.Schedules() {
		runs = append(runs, r.Function+" "+r.Event+" "+r.Expression+" "+r.Every.String())
	}
	assert.Equal(t, []string{"echofn Daily rate(1 day) 100ms", "echofn Hourly rate(2 hours) 100ms"}, runs, "the disabled schedule is not run")

	var input, scheduled int
	require.Eventually(t, func() bool {
		input, scheduled = 0, 0
		for _, ev := range recordedEvents(t, file) {
			var probe events.EventBridgeEvent
			require.NoError(t, json.Unmarshal(ev, &probe), "%s", ev)
			switch {
			case string(ev) == `{"task":"daily"}`:
				input++
			case probe.Source == "aws.events" && probe.DetailType == "Scheduled Event":
				require.NotEmpty(t, probe.ID)
				require.False(t, probe.Time.IsZero())
				require.Equal(t, []string{"arn:aws:events:us-east-1:000000000000:rule/echofn-Hourly"}, probe.Resources)
				scheduled++
			default:
				t.Fatalf("an event no schedule sends: %s", ev)
			}
		}
		return input >= 2 && scheduled >= 2
	}, 20*time.Second, 50*time.Millisecond, "each schedule ran twice (input %d, scheduled %d)", input, scheduled)
	assert.Contains(t, logs.String(), "[scheduler] echofn: Daily every 100ms (rate(1 day))")
	assert.NotContains(t, logs.String(), "failed")
}

// A rate is run at its own interval: a day's schedule does not run within
// a test, only when scaled.
func TestSchedulesRunAtTheirRate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "events")
	s, _ := stacktest.MustStart(t, stack.Config{Root: "testdata", Instances: 1,
		Env: map[string]string{"MQTT_URL": "tcp://127.0.0.1:1883", "MONGODB_URL": "mongodb://127.0.0.1:1/", "ECHO_EVENTS": file}})
	var every []time.Duration
	for _, r := range s.Schedules() {
		every = append(every, r.Every)
	}
	assert.Equal(t, []time.Duration{24 * time.Hour, 2 * time.Hour}, every)
	// A direct invocation is recorded at once; no scheduled one came before.
	_, funcErr, err := s.Invoke(context.Background(), "echofn", []byte(`{"direct":true}`))
	require.NoError(t, err)
	require.False(t, funcErr)
	assert.Equal(t, []json.RawMessage{json.RawMessage(`{"direct":true}`)}, recordedEvents(t, file))
}

// A schedule devstack cannot run stops the start, naming the function, the
// event and the expression, before anything is built.
func TestStartRefusesScheduleItCannotRun(t *testing.T) {
	_, err := stack.Start(context.Background(), stack.Config{Root: "testdata/cron", APIAddr: "127.0.0.1:0", LambdaAddr: "127.0.0.1:0"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `function nightly, schedule Nightly: "cron(0 3 * * ? *)" is not a rate(N minutes|hours|days) expression`)
}
