package silence_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/metrics"
	"github.com/tempwatch/tempwatch/shared/silence"
	"github.com/tempwatch/tempwatch/shared/tempwatch/mock"
)

// scheduledEvent is what EventBridge sends a Schedule target without Input.
const scheduledEvent = `{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event",
	"source":"aws.events","account":"123456789012","time":"2026-03-04T12:00:00Z","region":"eu-central-1",
	"resources":["arn:aws:events:eu-central-1:123456789012:rule/SilenceFunctionSweep"],"detail":{}}`

func TestHandleEventSweepsAndCounts(t *testing.T) {
	var swept []time.Time
	sweep := &mock.SilenceSweep{OpenSilentAlarmsFn: func(_ context.Context, now time.Time) (int, error) {
		swept = append(swept, now)
		return 3, nil
	}}
	var logs bytes.Buffer
	s := silence.NewSweeper(sweep, slog.New(slog.NewJSONHandler(&logs, nil)))
	set := metrics.NewSet()
	before := time.Now()
	got, err := s.HandleEvent(metrics.WithSet(context.Background(), set), json.RawMessage(scheduledEvent))
	require.NoError(t, err)
	assert.Equal(t, silence.Result{Opened: 3}, got)
	require.Len(t, swept, 1)
	assert.False(t, swept[0].Before(before), "the sweep runs at the function's present (%v), not at the event's time", swept[0])

	series := set.Snapshot()
	require.Len(t, series, 1)
	assert.Equal(t, metrics.AlarmsOpened, series[0].Def)
	assert.Equal(t, []string{"silent"}, series[0].Labels)
	assert.Equal(t, 3.0, series[0].Sum)
	assert.Contains(t, logs.String(), `"opened":3`)
}

func TestHandleEventRefusesOtherEvents(t *testing.T) {
	sweep := &mock.SilenceSweep{OpenSilentAlarmsFn: func(context.Context, time.Time) (int, error) {
		t.Error("swept on an event that is not a schedule's")
		return 0, nil
	}}
	s := silence.NewSweeper(sweep, slog.New(slog.DiscardHandler))
	for _, event := range []string{
		`{}`,
		`{"task":"expire-dead-letters"}`,
		`{"source":"aws.events","detail-type":"EC2 Instance State-change Notification"}`,
		`{"source":"tempwatch","detail-type":"Scheduled Event"}`,
		`[1]`,
		`not json`,
	} {
		_, err := s.HandleEvent(context.Background(), json.RawMessage(event))
		assert.ErrorIs(t, err, silence.ErrNotScheduled, "HandleEvent(%s)", event)
	}
}

func TestHandleEventReturnsTheStoresError(t *testing.T) {
	boom := errors.New("open silent alarms: connection refused")
	sweep := &mock.SilenceSweep{OpenSilentAlarmsFn: func(context.Context, time.Time) (int, error) { return 2, boom }}
	set := metrics.NewSet()
	_, err := silence.NewSweeper(sweep, slog.New(slog.DiscardHandler)).HandleEvent(metrics.WithSet(context.Background(), set), json.RawMessage(scheduledEvent))
	assert.ErrorIs(t, err, boom)
	series := set.Snapshot()
	require.Len(t, series, 1, "the chunks committed before the failure are counted")
	assert.Equal(t, 2.0, series[0].Sum)
}
