package e2e_test

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/e2e"
	"github.com/tempwatch/tempwatch/shared/mongo"
)

// ferretProcess is a private FerretDB, a process of its own so that the
// test can kill it as an outage would (SIGKILL: no goodbye to its clients)
// and start it again on the same address and data.
type ferretProcess struct {
	bin, dir, addr string
	cmd            *exec.Cmd
}

func startFerret(t *testing.T) *ferretProcess {
	t.Helper()
	f := &ferretProcess{bin: filepath.Join(t.TempDir(), "ferretdb"), dir: t.TempDir(), addr: "127.0.0.1:0"}
	build := exec.Command("go", "build", "-o", f.bin, "./cmd/ferretdb")
	build.Dir = ".." // the infra module
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build ferretdb: %s", out)
	f.start(t)
	t.Cleanup(f.kill)
	return f
}

// start runs the server and returns once it prints its URI, which it does
// when it accepts connections; the first start picks the port for good.
func (f *ferretProcess) start(t *testing.T) {
	t.Helper()
	f.cmd = exec.Command(f.bin, "-addr", f.addr, "-dir", f.dir)
	stdout, err := f.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, f.cmd.Start())
	uri := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			uri <- s.Text()
		}
		close(uri)
	}()
	select {
	case u, ok := <-uri:
		require.True(t, ok, "ferretdb exited before it was ready")
		f.addr = strings.TrimSuffix(strings.TrimPrefix(u, "mongodb://"), "/")
	case <-time.After(60 * time.Second):
		f.kill()
		t.Fatal("ferretdb not ready within 60s")
	}
}

func (f *ferretProcess) url() string { return "mongodb://" + f.addr + "/" }

func (f *ferretProcess) kill() {
	if f.cmd != nil && f.cmd.Process != nil {
		_ = f.cmd.Process.Kill()
		_ = f.cmd.Wait()
		f.cmd = nil
	}
}

// TestIngestSurvivesMongoOutage kills the function's MongoDB (a private
// FerretDB) for a third of a steady stream of 10,000 readings (about 10 s):
// readings keep reaching PostgreSQL during the outage and every message is
// acked without a retry; afterwards there is exactly one row per reading,
// and MongoDB holds every raw payload and every dead letter of the outage
// exactly once, drained from the PostgreSQL outbox by the function itself.
func TestIngestSurvivesMongoOutage(t *testing.T) {
	// MongoDB is down for outageRows of the stream's readings, a third of
	// it at a steady pace.
	const total, outageRows = 10_000, 3_300
	if testing.Short() { // before building its FerretDB, which takes a while
		t.Skip("e2e: needs PostgreSQL and Redis, so not run with -short (make test-unit)")
	}
	ctx := context.Background()
	ferret := startFerret(t)

	w := mustWorldWith(t, e2e.Options{MongoURL: ferret.url()})
	db := w.db
	b, err := w.h.StartBridge(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = b.Stop() }()
	pub, err := w.h.NewPublisher(w.keys)
	require.NoError(t, err)
	defer pub.Close()

	rs := w.readings(total/len(w.sensors)+1, 0)[:total]
	count := func(sql string) int {
		var n int
		require.NoError(t, db.QueryRow(ctx, sql).Scan(&n))
		return n
	}

	// A steady stream, about 30 s long: the outage sits inside it, with
	// traffic after it for the functions' drains to ride on.
	const chunk = 50
	published := make(chan error, 1)
	go func() {
		tick := time.NewTicker(150 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(rs); i += chunk {
			<-tick.C
			if err := pub.Publish(rs[i:min(i+chunk, len(rs))]); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()

	require.Eventually(t, func() bool { return count(`SELECT count(*) FROM readings`) >= 2_000 }, 60*time.Second, 10*time.Millisecond)
	ferret.kill()
	killedAt := time.Now()
	atKill := count(`SELECT count(*) FROM readings`)
	// Messages rejected for good while MongoDB is down: their dead letters
	// must wait too.
	bad := [][2]string{
		{"tempwatch/acme/sensors/dev-1/readings", `{"value":`},
		{"tempwatch/acme/sensors/dev-2/readings", `{"value":9000}`},
		{"tempwatch/globex/sensors/dev-3/readings", `{"value":"warm"}`},
	}
	require.NoError(t, pub.PublishRaw(bad))
	// MongoDB stays down until outageRows more readings have reached
	// PostgreSQL without it: the probe is the point of the test.
	require.Eventually(t, func() bool { return count(`SELECT count(*) FROM readings`)-atKill >= outageRows },
		60*time.Second, 20*time.Millisecond, "readings kept arriving while MongoDB was down")
	beforeRestart := count(`SELECT count(*) FROM readings`)
	waiting := count(`SELECT count(*) FROM archive_outbox`)
	ferret.start(t)
	restartedAt := time.Now()
	t.Logf("readings stored: %d when FerretDB was killed, %d when it restarted %s later; %d archive calls waiting in the outbox",
		atKill, beforeRestart, restartedAt.Sub(killedAt).Round(100*time.Millisecond), waiting)
	assert.Positive(t, waiting, "the outage's archive waited in the outbox")

	require.Eventually(t, func() bool { return count(`SELECT count(*) FROM archive_outbox`) == 0 }, 60*time.Second, 50*time.Millisecond,
		"the functions drain the outbox once MongoDB is back")
	t.Logf("outbox empty %s after the restart", time.Since(restartedAt).Round(100*time.Millisecond))
	require.NoError(t, <-published)
	w.waitRows(t, total, 90*time.Second)

	w.assertStored(t, rs)
	mc, err := mongo.Open(ctx, ferret.url())
	require.NoError(t, err)
	defer func() { _ = mc.Disconnect(ctx) }()
	distinct, stored, err := mongo.NewPayloadStore(mc.Database(w.h.MongoDB)).CountPayloads(ctx)
	require.NoError(t, err)
	assert.Equal(t, total, distinct, "a raw payload for every reading")
	assert.Equal(t, total, stored, "each raw payload exactly once")
	w.assertDeadLetters(t, len(bad))
	assert.Zero(t, testutil.ToFloat64(b.Metrics().Retries), "the outage made nothing retry: every batch was answered as stored")
	assert.Equal(t, float64(total+len(bad)), testutil.ToFloat64(b.Metrics().Acked), "every message acked once")
	assert.Contains(t, w.logs.String(), "MongoDB archive unavailable", "the functions said what happened")
}
