// Command ingestbench measures the ingest path end to end: readings per
// second from MQTT publish (QoS 1, one reading per message, each sensor over
// its own connection with its own device key) to a stored row, through the
// embedded broker with device authentication (cmd/mqttbroker, its own
// process), the bridge binary, devstack's Invoke API and the ingest
// function's bootstrap into PostgreSQL (synchronous_commit as configured,
// on by default), against a bare pgx CopyFrom loop writing the same rows in
// the same run, and against the broker alone. It reports publish-to-stored
// latency and CPU per process.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/bridge/bridge"
	"github.com/tempwatch/tempwatch/bridge/mqtt"
	"github.com/tempwatch/tempwatch/infra/e2e"
	"github.com/tempwatch/tempwatch/infra/pahoconn"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

func main() {
	var (
		n          = flag.Int("n", 100_000, "readings to publish")
		clients    = flag.Int("clients", 2, "client companies")
		sensors    = flag.Int("sensors", 50, "sensors per client")
		publishers = flag.Int("publishers", 4, "publishing goroutines (each owns the device connections of its share of the sensors)")
		window     = flag.Int("window", 2000, "unacknowledged publishes per publisher")
		backlog    = flag.Int("backlog", 6000, "most messages published and not yet acked by the subscriber (0: no bound; mochi drops beyond MaximumInflight)")
		instances  = flag.Int("instances", 2, "ingest function instances")
		batch      = flag.Int("batch", 500, "BATCH_SIZE of the bridge and rows per COPY")
		inFlight   = flag.Int("in-flight", 2000, "MAX_IN_FLIGHT of the bridge")
		root       = flag.String("root", "", "repository root (default: the nearest parent holding template.yaml)")
		dbBase     = flag.String("db", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL")
		rate       = flag.Float64("rate", 0, "publish rate in messages/s, all publishers together (0: as fast as possible)")
		mongoPid   = flag.Int("mongo-pid", 0, "pid of the MongoDB/FerretDB server at MONGODB_URL, for its CPU")
		logs       = flag.Bool("logs", false, "show the function's and devstack's logs on stderr")
	)
	flag.Parse()
	if err := run(*n, *clients, *sensors, *publishers, *window, *backlog, *instances, *batch, *inFlight, *root, *dbBase, *mongoPid, *rate, *logs); err != nil {
		fmt.Fprintln(os.Stderr, "ingestbench:", err)
		os.Exit(1)
	}
}

type sensor struct{ slug, device, id, key string }

// benchBridgeClientID is the bench bridge's client id; the broker lets only
// the bridge's credential use ids with this prefix.
const benchBridgeClientID = deviceauth.DefaultBridgeClientIDPrefix + "-bench"

func run(n, clients, perClient, publishers, window, backlog, instances, batch, inFlight int, root, dbBase string, mongoPid int, rate float64, logs bool) error {
	ctx := context.Background()
	if root == "" {
		root = findRoot()
	}
	root, _ = filepath.Abs(root)
	e2eURL, dropE2E, err := schema(ctx, dbBase)
	if err != nil {
		return err
	}
	defer dropE2E()
	copyURL, dropCopy, err := schema(ctx, dbBase)
	if err != nil {
		return err
	}
	defer dropCopy()
	db, err := migrated(ctx, e2eURL)
	if err != nil {
		return err
	}
	defer db.Close()
	copyDB, err := migrated(ctx, copyURL)
	if err != nil {
		return err
	}
	defer copyDB.Close()
	var syncCommit string
	if err := db.QueryRow(ctx, "SHOW synchronous_commit").Scan(&syncCommit); err != nil {
		return err
	}
	fleet, err := makeSensors(ctx, db, clients, perClient)
	if err != nil {
		return err
	}
	copyFleet, err := makeSensors(ctx, copyDB, clients, perClient)
	if err != nil {
		return err
	}

	fmt.Printf("ingestbench: %d readings, %d clients x %d sensors, 1 reading/message, QoS 1, synchronous_commit=%s, batch %d, %d function instances, %d CPUs\n",
		n, clients, perClient, syncCommit, batch, instances, numCPU())

	// The function's connections carry an application_name, so the CPU of
	// its PostgreSQL backends can be told from other users of the server.
	appName := fmt.Sprintf("ingestbench-%d", os.Getpid())
	fnURL, err := withParam(e2eURL, "application_name", appName)
	if err != nil {
		return err
	}
	opts := e2e.Options{Root: root, DatabaseURL: fnURL, MongoURL: os.Getenv("MONGODB_URL"), Instances: instances}
	if logs {
		opts.Logs = os.Stderr
	}
	h, err := e2e.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer h.Close()
	fmt.Printf("broker: a private embedded mochi-mqtt broker, %s, with device authentication on (each of the %d sensors connects with "+
		"its own username, client id and device key and may publish only to its own topic; the bridge with its own credential); "+
		"MAX_IN_FLIGHT=%d of the bridge\n", h.Broker, len(fleet), inFlight)
	devices, err := connectDevices(h.Broker.URL, fleet, publishers)
	if err != nil {
		return err
	}
	defer devices.Close()

	// The broker alone first, before the bridge's persistent session
	// exists: the same publishes, over the same device connections, to a
	// bare client with the bridge's credential and a clean session that
	// only acks. Nothing of it can reach the bridge or PostgreSQL (the
	// stored count below must come out at exactly n). Nothing downstream of
	// the broker can go faster than this.
	floorDur, floorCPU, err := brokerFloor(h, devices, n, window, backlog)
	if err != nil {
		return fmt.Errorf("broker floor: %w", err)
	}

	bin := filepath.Join(os.TempDir(), fmt.Sprintf("tempwatch-bridge-%d", os.Getpid()))
	build := exec.Command("go", "build", "-o", bin, "./bridge")
	build.Dir, build.Stderr = root, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build bridge: %w", err)
	}
	defer os.Remove(bin)
	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	bridgeProc := exec.Command(bin)
	bridgeProc.Stderr = os.Stderr
	for k, v := range h.BridgeEnv(map[string]string{"BATCH_SIZE": strconv.Itoa(batch), "MAX_IN_FLIGHT": strconv.Itoa(inFlight),
		"LOG_LEVEL": "warn", "MQTT_CLIENT_ID": benchBridgeClientID, "METRICS_ADDR": metricsAddr}) {
		bridgeProc.Env = append(bridgeProc.Env, k+"="+v)
	}
	if err := bridgeProc.Start(); err != nil {
		return err
	}
	defer func() { _ = bridgeProc.Process.Signal(os.Interrupt); _ = bridgeProc.Wait() }()
	if err := waitHealthy("http://"+metricsAddr+"/healthz", 30*time.Second); err != nil { // subscribed: the broker holds nothing before that
		return err
	}

	procs := map[string][]int{"bridge": {bridgeProc.Process.Pid}, "mqttbroker": {h.Broker.Pid()},
		"bootstrap (ingest)": childrenNamed(os.Getpid(), "bootstrap"), "postgres (walwriter, checkpointer, bgwriter)": postgresAux(),
		"bench (publishers, devstack, FerretDB)": {os.Getpid()}}
	if mongoPid > 0 {
		procs["mongodb (MONGODB_URL)"] = []int{mongoPid}
	}
	if pids := named("redis-server"); len(pids) > 0 {
		procs["redis (shared with other users)"] = pids
	}
	backendsBefore := map[int]float64{}
	for _, pid := range backends(ctx, db, appName) {
		backendsBefore[pid] = procCPU(pid)
	}
	before := cpu(procs)
	busyBefore := machineBusy()
	start := time.Now()
	// The bridge acks a message only after the function stored it, so the
	// last ack bounds the last row's commit from above. Polling its counter
	// is cheap; polling count(*) on readings would load PostgreSQL, which is
	// part of what is measured.
	acked, stopWatch := watchAcked("http://" + metricsAddr + "/metrics")
	defer func() { _ = stopWatch() }()
	rows, pubDur, err := publish(devices, n, window, rate, backlog, acked)
	if err != nil {
		return err
	}
	for last, progress := int64(-1), time.Now(); acked() < int64(n); time.Sleep(time.Millisecond) {
		if a := acked(); a != last {
			last, progress = a, time.Now()
		} else if time.Since(progress) > stall {
			if err := stopWatch(); err != nil {
				return fmt.Errorf("bridge metrics: %w", err)
			}
			return fmt.Errorf("only %d of %d messages acked, none for %s: %s", a, n, stall, lostHint)
		}
	}
	e2eDur := time.Since(start)
	if err := stopWatch(); err != nil {
		return fmt.Errorf("bridge metrics: %w", err)
	}
	after := cpu(procs)
	busy := machineBusy() - busyBefore
	const ingestBackends = "postgres (the function's backends)"
	for _, pid := range backends(ctx, db, appName) { // those started during the run count from 0
		after[ingestBackends] += procCPU(pid) - backendsBefore[pid]
	}
	procs[ingestBackends] = nil
	var stored int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM readings").Scan(&stored); err != nil {
		return err
	}
	if stored != n {
		return fmt.Errorf("%d messages acked but %d rows stored (want exactly %d)", n, stored, n)
	}
	var p50, p99, pmax float64
	if err := db.QueryRow(ctx, `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d), max(d)
		FROM (SELECT extract(epoch FROM created_at - measured_at) * 1000 AS d FROM readings) x`).Scan(&p50, &p99, &pmax); err != nil {
		return err
	}

	// The same rows, written by a bare CopyFrom loop, batch rows per COPY
	// (each its own durable commit).
	copyIDs := map[string]string{}
	for i, s := range fleet {
		copyIDs[s.id] = copyFleet[i].id
	}
	copyStart := time.Now()
	for i := 0; i < len(rows); i += batch {
		chunk := rows[i:min(i+batch, len(rows))]
		_, err := copyDB.CopyFrom(ctx, pgx.Identifier{"readings"}, []string{"sensor_id", "value", "measured_at"},
			pgx.CopyFromSlice(len(chunk), func(j int) ([]any, error) {
				return []any{copyIDs[chunk[j].sensorID], chunk[j].value, chunk[j].at}, nil
			}))
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
	}
	copyDur := time.Since(copyStart)

	e2eRate := float64(n) / e2eDur.Seconds()
	copyRate := float64(n) / copyDur.Seconds()
	fmt.Printf("publish:        %8.0f msg/s (%d messages in %s, by %d device connections, at most %d ahead of the bridge's acks)\n",
		float64(n)/pubDur.Seconds(), n, pubDur.Round(time.Millisecond), len(fleet), backlog)
	fmt.Printf("end to end:     %8.0f readings/s (publish start to last row stored, %s)\n", e2eRate, e2eDur.Round(time.Millisecond))
	fmt.Printf("bare CopyFrom:  %8.0f readings/s (%d rows per COPY, %s)\n", copyRate, batch, copyDur.Round(time.Millisecond))
	fmt.Printf("ratio:          %8.2f x bare COPY\n", e2eRate/copyRate)
	fmt.Printf("latency publish->stored (created_at - device ts): p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", p50, p99, pmax)
	fmt.Printf("CPU during the end-to-end run (%.1f s wall, %d CPUs):\n", e2eDur.Seconds(), numCPU())
	names := make([]string, 0, len(procs))
	for k := range procs {
		names = append(names, k)
	}
	sort.Strings(names)
	ours := 0.0
	for _, k := range names {
		s := after[k] - before[k]
		ours += s
		fmt.Printf("  %-42s %6.2f CPU-s  %5.0f%% of one core  (%d µs/reading)\n", k, s, 100*s/e2eDur.Seconds(), int(s*1e6/float64(n)))
	}
	fmt.Printf("  whole machine busy %.2f CPU-s (%.0f%% of %d cores); the processes above %.2f CPU-s: the rest is other load\n",
		busy, 100*busy/e2eDur.Seconds()/float64(numCPU()), numCPU(), ours)
	m, err := scrape("http://" + metricsAddr + "/metrics")
	if err != nil {
		return err
	}
	calls := m["tempwatch_bridge_invoke_duration_seconds_count"]
	fmt.Printf("bridge: %.0f invocations, mean invoke %.0f ms, %.0f messages retried\n", calls,
		1000*m["tempwatch_bridge_invoke_duration_seconds_sum"]/max(calls, 1), m["tempwatch_bridge_retries_total"])

	floorRate := float64(n) / floorDur.Seconds()
	fmt.Printf("broker alone:   %8.0f msg/s (the same device publishes, measured first in this run, to a bare client with the bridge's "+
		"credential that only acks; mqttbroker %d µs/message): end to end is %.2f x that\n",
		floorRate, int(floorCPU*1e6/float64(n)), e2eRate/floorRate)
	fmt.Printf("machine:        a syscall costs %.2f µs here (1-byte pipe write+read, halved)\n", syscallCost())
	return nil
}

// backends returns the pids of the PostgreSQL backends named appName.
func backends(ctx context.Context, db *pgxpool.Pool, appName string) []int {
	rows, _ := db.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", appName)
	pids, _ := pgx.CollectRows(rows, pgx.RowTo[int])
	return pids
}

func withParam(u, k, v string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	q := p.Query()
	q.Set(k, v)
	p.RawQuery = q.Encode()
	return p.String(), nil
}

// scrape reads the unlabelled samples of a Prometheus text page.
func scrape(u string) (map[string]float64, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept-Encoding", "identity") // no gzip work in the measured bridge
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if name, v, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(name, "#") && !strings.Contains(name, "{") {
			out[name], _ = strconv.ParseFloat(v, 64)
		}
	}
	return out, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

type row struct {
	sensorID string
	value    float64
	at       time.Time
}

// deviceConns are the fleet's device connections, each logged in as its
// sensor (username and client id "<slug>/<device>", the device key as
// password), grouped by the publisher goroutine that owns them.
type deviceConns struct {
	fleet  []sensor
	topics []string      // by fleet index
	conns  []paho.Client // by fleet index
	// owned lists the fleet indexes each publisher goroutine publishes
	// for: publisher p owns the sensors s with s % publishers == p, so
	// per-sensor timestamps only need to increase within one goroutine.
	owned [][]int
}

// connectDevices connects every sensor of fleet over its own buffered
// connection (infra/pahoconn: publishes queued together
// leave in one write, PUBACKs are read in bulk).
func connectDevices(broker string, fleet []sensor, publishers int) (*deviceConns, error) {
	d := &deviceConns{fleet: fleet, topics: make([]string, len(fleet)), conns: make([]paho.Client, len(fleet)),
		owned: make([][]int, max(1, min(publishers, len(fleet))))}
	for i := range fleet {
		d.owned[i%len(d.owned)] = append(d.owned[i%len(d.owned)], i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(fleet))
	for i, s := range fleet {
		ref := tempwatch.DeviceRef{ClientSlug: s.slug, DeviceID: s.device}
		d.topics[i] = ref.Topic()
		user := deviceauth.Username(ref)
		d.conns[i] = paho.NewClient(pahoconn.Buffered(paho.NewClientOptions().AddBroker(broker).
			SetClientID(user).SetUsername(user).SetPassword(s.key).SetOrderMatters(false).SetWriteTimeout(30 * time.Second)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if t := d.conns[i].Connect(); !t.WaitTimeout(30*time.Second) || t.Error() != nil {
				errs <- fmt.Errorf("connect device %s: %v", user, t.Error())
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Close disconnects every device.
func (d *deviceConns) Close() {
	for _, c := range d.conns {
		if c.IsConnected() {
			c.Disconnect(250)
		}
	}
}

// publish sends n readings round-robin over the fleet, each by its own
// sensor's connection to its own readings topic, from one goroutine per
// publisher, device timestamp = publish time (ms; strictly increasing per
// sensor), at rate messages/s when rate > 0, with at most window
// unacknowledged publishes per goroutine, and returns the rows it published.
// With backlog > 0 it holds back while backlog messages or more are
// published and not yet delivered (delivered counts what the subscriber
// acked): the broker acks a publish before it routes it, so only this
// bounds what the broker holds for the subscriber.
func publish(d *deviceConns, n, window int, rate float64, backlog int, delivered func() int64) ([]row, time.Duration, error) {
	publishers := len(d.owned)
	rows := make([]row, n)
	var wg sync.WaitGroup
	var issued atomic.Int64
	errs := make(chan error, publishers)
	start := time.Now()
	for p, mine := range d.owned {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(p), 7))
			last := make([]time.Time, len(mine))
			sem := make(chan paho.Token, window)
			wait := func(t paho.Token) bool {
				if !t.WaitTimeout(60*time.Second) || t.Error() != nil {
					errs <- fmt.Errorf("publish: %v", t.Error())
					return false
				}
				return true
			}
			seen, progress := int64(-1), time.Now()
			for k, i := 0, p; i < n; k, i = k+1, i+publishers {
				if rate > 0 { // message k of this publisher is due at k·publishers/rate
					time.Sleep(time.Until(start.Add(time.Duration(float64(k*publishers) / rate * float64(time.Second)))))
				}
				for backlog > 0 && issued.Load()-delivered() >= int64(backlog) {
					if got := delivered(); got != seen {
						seen, progress = got, time.Now()
					} else if time.Since(progress) > stall {
						errs <- fmt.Errorf("publish: %d published, %d delivered, none for %s: %s", issued.Load(), got, stall, lostHint)
						return
					}
					time.Sleep(time.Millisecond)
				}
				issued.Add(1)
				j := k % len(mine)
				si := mine[j]
				at := time.Now().UTC().Truncate(time.Millisecond)
				if !at.After(last[j]) {
					at = last[j].Add(time.Millisecond)
				}
				last[j] = at
				v := math.Round((18+r.NormFloat64())*100) / 100
				rows[i] = row{sensorID: d.fleet[si].id, value: v, at: at}
				payload := `{"value":` + strconv.FormatFloat(v, 'f', -1, 64) + `,"ts":"` + at.Format("2006-01-02T15:04:05.000Z07:00") + `"}`
				if len(sem) == cap(sem) && !wait(<-sem) {
					return
				}
				sem <- d.conns[si].Publish(d.topics[si], 1, false, payload)
			}
			for len(sem) > 0 {
				if !wait(<-sem) {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, 0, err
	}
	return rows, time.Since(start), nil
}

// stall is how long the bench waits for the next message to be delivered
// before it gives up.
const stall = 30 * time.Second

// lostHint is the likely cause of a stall: mochi-mqtt acks a publish before
// it routes it, and drops a QoS 1 message when the subscriber already has
// Capabilities.MaximumInflight unacknowledged (logging "client store quota
// reached" on mqttbroker's stderr) or MaximumClientWritesPending queued.
const lostHint = "the broker dropped messages beyond its in-flight window or write queue for the subscriber " +
	"(mochi Capabilities.MaximumInflight, MaximumClientWritesPending: keep -backlog below them)"

// brokerFloor publishes n readings as publish does, over the same device
// connections to the same topics, to a bare subscriber that logs in with
// the bridge's credential (a client id of the bridge's prefix, a clean
// session) and reads through the bridge's own receive path (bridge/mqtt),
// acking each message at once and dropping it. It returns the time until
// the last arrived and the broker's CPU-seconds. Run it while no bridge
// session exists, or the broker would queue every message for that session
// too.
func brokerFloor(h *e2e.Harness, d *deviceConns, n, window, backlog int) (time.Duration, float64, error) {
	var got atomic.Int64
	sub, err := mqtt.Subscribe(mqtt.Options{URL: h.Broker.URL, ClientID: benchBridgeClientID + "-floor", Topic: bridge.DefaultTopic,
		CleanSession: true, Username: deviceauth.DefaultBridgeUsername, Password: h.BridgePassword,
		Log:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		ReadPause: bridge.Config{}.ReadPause()}, func(m mqtt.Message) {
		mqtt.AckAll([]mqtt.Ack{m.Ack})
		got.Add(1)
	})
	if err != nil {
		return 0, 0, err
	}
	defer sub.Close(250 * time.Millisecond)
	cpu0, start := procCPU(h.Broker.Pid()), time.Now()
	if _, _, err := publish(d, n, window, 0, backlog, got.Load); err != nil {
		return 0, 0, err
	}
	for last, progress := int64(-1), time.Now(); ; time.Sleep(time.Millisecond) {
		g := got.Load()
		if g >= int64(n) {
			break
		}
		if g != last {
			last, progress = g, time.Now()
		} else if time.Since(progress) > stall {
			return 0, 0, fmt.Errorf("%d of %d messages arrived, none for %s: %s", g, n, stall, lostHint)
		}
	}
	return time.Since(start), procCPU(h.Broker.Pid()) - cpu0, nil
}

// watchAcked polls the bridge's acked counter every 50 ms until stop, which
// returns the first scrape error (a counter that stops moving then shows as
// a stall).
func watchAcked(metricsURL string) (acked func() int64, stop func() error) {
	var n atomic.Int64
	done, exited := make(chan struct{}), make(chan error, 1)
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			m, err := scrape(metricsURL)
			if err != nil {
				exited <- err
				return
			}
			n.Store(int64(m["tempwatch_bridge_acked_total"]))
			select {
			case <-done:
				exited <- nil
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	var err error
	return n.Load, func() error { once.Do(func() { close(done); err = <-exited }); return err }
}

// waitHealthy polls u until it answers 200.
func waitHealthy(u string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(u) //nolint:gosec // a local URL of our own
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy within %s (last error: %v)", u, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syscallCost times write+read pairs of one byte on a pipe, as
// `dd bs=1` does: on virtual machines a syscall can cost ten times what it
// does on bare metal, and the ingest path makes several per message.
func syscallCost() float64 {
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		return math.NaN()
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	const pairs = 100_000
	b := []byte{0}
	start := time.Now()
	for range pairs {
		_, _ = syscall.Write(fds[1], b)
		_, _ = syscall.Read(fds[0], b)
	}
	return float64(time.Since(start).Microseconds()) / (2 * pairs)
}

func makeSensors(ctx context.Context, db *pgxpool.Pool, clients, perClient int) ([]sensor, error) {
	var out []sensor
	for c := range clients {
		slug := fmt.Sprintf("bench-%d", c+1)
		var clientID string
		if err := db.QueryRow(ctx, `INSERT INTO clients (name, slug, timezone) VALUES ($1, $1, 'UTC') RETURNING id`, slug).Scan(&clientID); err != nil {
			return nil, fmt.Errorf("create client: %w", err)
		}
		for s := range perClient {
			dev := fmt.Sprintf("dev-%04d", s+1)
			key, err := tempwatch.NewDeviceKey()
			if err != nil {
				return nil, err
			}
			var id string
			if err := db.QueryRow(ctx, `INSERT INTO sensors (client_id, device_id, name, device_key_hash) VALUES ($1, $2, $2, $3) RETURNING id`,
				clientID, dev, tempwatch.HashDeviceKey(key)).Scan(&id); err != nil {
				return nil, fmt.Errorf("create sensor: %w", err)
			}
			out = append(out, sensor{slug: slug, device: dev, id: id, key: key})
		}
	}
	return out, nil
}

// schema creates a fresh schema and returns a URL whose search_path is it.
func schema(ctx context.Context, base string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("bench_%d_%d", os.Getpid(), rand.IntN(1e6))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		return "", nil, err
	}
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	drop := func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE")
			_ = c.Close(context.Background())
		}
	}
	return u.String(), drop, nil
}

// migrated connects to a schema of the benchmark's own and migrates it.
func migrated(ctx context.Context, url string) (*pgxpool.Pool, error) {
	db, err := postgres.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := postgres.Migrate(ctx, db, nil); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// cpu sums utime+stime (seconds) of each group's processes from /proc.
func cpu(groups map[string][]int) map[string]float64 {
	out := map[string]float64{}
	for name, pids := range groups {
		for _, pid := range pids {
			out[name] += procCPU(pid)
		}
	}
	return out
}

func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command: state is field 3, utime 14, stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

func procs() map[int][2]string { // pid → (comm, ppid)
	out := map[int][2]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		open, cl := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		f := strings.Fields(s[cl+2:])
		out[pid] = [2]string{s[open+1 : cl], f[1]}
	}
	return out
}

// named returns the pids of the processes whose command is comm.
func named(comm string) []int {
	var out []int
	for pid, p := range procs() {
		if p[0] == comm {
			out = append(out, pid)
		}
	}
	return out
}

func childrenNamed(ppid int, comm string) []int {
	var out []int
	for pid, p := range procs() {
		if p[0] == comm && p[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

// postgresAux returns the PostgreSQL server processes that write WAL and
// data pages for every backend (shared with other users of the server).
func postgresAux() []int {
	var out []int
	for pid, p := range procs() {
		if !strings.HasPrefix(p[0], "postgres") {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		for _, aux := range []string{": walwriter", ": checkpointer", ": background writer"} {
			if strings.HasPrefix(string(cmd), "postgres: ") && strings.Contains(string(cmd), aux) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// findRoot walks up from the working directory to the repository root.
func findRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "template.yaml")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// machineBusy is the CPU-seconds all cores spent not idle since boot.
func machineBusy() float64 {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	busy := 0.0
	for i, v := range f[1:min(len(f), 9)] { // guest time is counted in user already
		if n, err := strconv.ParseFloat(v, 64); err == nil && i != 3 && i != 4 {
			busy += n
		}
	}
	return busy / 100
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(b), "processor\t:"))
}
