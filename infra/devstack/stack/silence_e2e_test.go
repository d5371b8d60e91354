package stack_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/devstack/stack/stacktest"
	"github.com/tempwatch/tempwatch/shared/metrics/promtooltest"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
)

// The real silence function runs on template.yaml's schedule (scaled to
// 200 ms): a sensor whose last receipt is older than its threshold gets a
// silent alarm and its event though no one calls the sweep, one heard
// lately gets none, and the opening is counted in the functions' metrics.
func TestSilenceSweepRunsOnSchedule(t *testing.T) {
	env := stacktest.Env(t)
	env["MQTT_URL"], env["MONGODB_URL"] = "tcp://127.0.0.1:1883", "mongodb://127.0.0.1:1/" // the sweep reads neither
	s, _ := stacktest.MustStart(t, stack.Config{Root: "../../..", Instances: 1, Only: []string{"silence"},
		ScheduleEvery: 200 * time.Millisecond, Env: env})
	require.Len(t, s.Schedules(), 1)
	assert.Equal(t, "rate(1 minute)", s.Schedules()[0].Expression)

	ctx := context.Background()
	db, err := postgres.Open(ctx, s.DatabaseURL())
	require.NoError(t, err)
	defer db.Close()
	client := pgtest.MustClient(t, db, "acme", "")
	silent := pgtest.MustSensor(t, db, client, "silent", "key-silent")
	heard := pgtest.MustSensor(t, db, client, "heard", "key-heard")
	never := pgtest.MustSensor(t, db, client, "never", "key-never")
	_, err = db.Exec(ctx, `UPDATE sensors SET last_received_at = now() - CASE id WHEN $1::uuid THEN interval '20 minutes' ELSE interval '1 minute' END
		WHERE id IN ($1, $2)`, silent, heard)
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM alarms a JOIN alarm_events e ON e.alarm_id = a.id
			WHERE a.sensor_id = $1 AND a.kind = 'silent' AND a.state = 'open' AND e.type = 'alarm.opened'`, silent).Scan(&n))
		return n == 1
	}, 30*time.Second, 100*time.Millisecond, "the scheduled sweep opened the silent sensor's alarm")

	var others int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM alarms WHERE sensor_id IN ($1, $2)`, heard, never).Scan(&others))
	assert.Zero(t, others, "a sensor heard lately and one never heard from have no alarm")

	var text []byte
	require.Eventually(t, func() bool {
		resp, err := http.Get(s.MetricsURL())
		require.NoError(t, err)
		defer resp.Body.Close()
		text, err = io.ReadAll(resp.Body)
		require.NoError(t, err)
		return strings.Contains(string(text), `tempwatch_alarms_opened_total{kind="silent"} 1`)
	}, 10*time.Second, 100*time.Millisecond, "the opening is counted once")
	promtooltest.MustCheckMetrics(t, text)
}
