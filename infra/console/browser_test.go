// Package console_test runs the admin console in a real browser against a
// devstack: Debian's chromium driven by playwright-core
// (shared/console/browser/drive.mjs), through login, an alarm opening from
// readings published over MQTT, its acknowledgement, the sensor's chart and
// a CSV export, failing on any console error or CSP violation.
package console_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/infra/devstack/stack"
	"github.com/tempwatch/tempwatch/infra/devstack/stack/stacktest"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

const root = "../.."

// functions are the ones the console calls, and ingest behind the bridge.
var functions = []string{"auth", "users", "clients", "sensors", "readings", "statistics", "ingest", "alarms", "export", "console"}

// alertHigh is the test sensor's high limit; published readings go above it.
const alertHigh = 8.0

// driverConfig is the BROWSER_TEST the driver script reads.
type driverConfig struct {
	URL        string `json:"url"`
	Chromium   string `json:"chromium"`
	Client     string `json:"client"`
	ClientName string `json:"clientName"`
	Email      string `json:"email"`
	Password   string `json:"password"`
	// ViewerEmail is a viewer of the same client, with ViewerPassword.
	ViewerEmail    string  `json:"viewerEmail"`
	ViewerPassword string  `json:"viewerPassword"`
	SensorName     string  `json:"sensorName"`
	AlertHigh      float64 `json:"alertHigh"`
	Alarms         bool    `json:"alarms"`
	Exports        bool    `json:"exports"`
}

// TestConsoleInABrowser: a client admin logs in through the page (no nav
// before), sees the client's sensors with their status, sees the alarm
// that readings published over MQTT opened, acknowledges it, opens the
// sensor's chart, exports its readings and logs out (no nav after), on a
// 390-px-wide page that never scrolls sideways; the driver fails on any
// console error, uncaught exception or CSP violation.
func TestConsoleInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("a devstack and a browser: not run with -short (make test-unit)")
	}
	chromium := mustChromium(t)
	node, err := exec.LookPath("node")
	require.NoError(t, err, "the browser test runs its driver with Node.js 20+")
	_, err = os.Stat(filepath.Join(root, "shared/console/node_modules/playwright-core/package.json"))
	require.NoError(t, err, "playwright-core is missing: make tools (npm ci in shared/console) installs it")

	env := stacktest.Env(t)
	started := time.Now()
	s, _ := stacktest.MustStart(t, stack.Config{Root: root, Instances: 1, Only: functions, Bridge: true, Env: env})
	t.Logf("devstack up in %s", time.Since(started).Round(time.Millisecond))
	admin := api{t: t, base: s.APIURL(), token: stacktest.MustAdminToken(t, env["DATABASE_URL"], env["JWT_SIGNING_KEYS"])}

	slug := "browser-" + strings.ToLower(auth.NewID()[:8])
	var client struct{ ID, Name string }
	admin.mustDo("POST", "/clients", map[string]any{"name": "Browser Cold Chain", "slug": slug, "timezone": "Europe/Berlin"},
		http.StatusCreated, &client)
	var sensor struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		DeviceKey string `json:"device_key"`
	}
	admin.mustDo("POST", "/sensors", map[string]any{"client_id": client.ID, "name": "Cold room 1", "device_id": "cr-1",
		"alert_high": alertHigh}, http.StatusCreated, &sensor)
	password := "correct horse battery staple " + auth.NewID()
	email := "ops-" + strings.ToLower(auth.NewID()[:8]) + "@browser.test"
	admin.mustDo("POST", "/users", map[string]any{"email": email, "name": "Ops", "role": tempwatch.RoleClientAdmin,
		"client_id": client.ID, "password": password}, http.StatusCreated, nil)
	viewer := "viewer-" + strings.ToLower(auth.NewID()[:8]) + "@browser.test"
	admin.mustDo("POST", "/users", map[string]any{"email": viewer, "name": "Viewer", "role": tempwatch.RoleViewer,
		"client_id": client.ID, "password": password}, http.StatusCreated, nil)

	cfg := driverConfig{URL: s.APIURL() + "/console", Chromium: chromium, Client: slug, ClientName: client.Name,
		Email: email, Password: password, ViewerEmail: viewer, ViewerPassword: password, SensorName: sensor.Name,
		AlertHigh: alertHigh, Alarms: true, Exports: true}
	device := tempwatch.DeviceRef{ClientSlug: slug, DeviceID: "cr-1"}
	runDriver(t, node, cfg, map[string]func(){
		"publish": func() { mustPublish(t, s.MQTTURL(), device, sensor.DeviceKey) },
	})
}

// mustChromium is the browser to drive: CHROMIUM, else Debian's. Missing,
// the test fails, as for any other service it needs (make test installs
// it: infra/scripts/test.sh).
func mustChromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	_, err := os.Stat(path)
	require.NoError(t, err, "no browser at %s (apt-get install chromium, or set CHROMIUM)", path)
	return path
}

// runDriver runs the driver script with cfg and answers each "@@ <name>"
// line it prints with on[name]() and the line "<name>ed"; it fails the test
// when the driver fails, prints a request it has no answer for, or takes
// longer than a minute.
func runDriver(t *testing.T, node string, cfg driverConfig, on map[string]func()) {
	t.Helper()
	conf, err := json.Marshal(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(root, "shared/console/browser/drive.mjs"))
	cmd.Env = append(os.Environ(), "BROWSER_TEST="+string(conf))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	started := time.Now()
	require.NoError(t, cmd.Start())
	defer func() { t.Logf("browser test ran for %s", time.Since(started).Round(time.Millisecond)) }()

	var steps, unanswered []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		t.Log("driver: " + line)
		name, ok := strings.CutPrefix(line, "@@ ")
		if !ok {
			continue
		}
		if step, ok := strings.CutPrefix(name, "step "); ok {
			steps = append(steps, step)
			continue
		}
		if name == "done" {
			continue
		}
		answer, ok := on[name]
		if !ok {
			unanswered = append(unanswered, name)
			continue
		}
		answer()
		_, err := io.WriteString(stdin, name+"ed\n")
		require.NoError(t, err)
	}
	_ = stdin.Close()
	err = cmd.Wait()
	require.NoError(t, err, "the browser test failed after %d steps (%s):\n%s", len(steps), strings.Join(steps, " → "), stderr.String())
	require.Empty(t, unanswered, "the driver asked for what the test does not do")
	require.NotEmpty(t, steps)
	require.Equal(t, "log out: the nav is hidden again", steps[len(steps)-1], "the driver ran to its last step")
	require.Contains(t, steps, "log in through the page")
}

// mustPublish publishes readings above alertHigh as the device, over MQTT
// to the stack's broker, and returns once the broker has acknowledged each
// (QoS 1).
func mustPublish(t *testing.T, broker string, device tempwatch.DeviceRef, key string) {
	t.Helper()
	user := deviceauth.Username(device)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(user).SetUsername(user).SetPassword(key).
		SetAutoReconnect(false).SetConnectRetry(false))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second), "connect to %s", broker)
	require.NoError(t, tok.Error())
	defer c.Disconnect(250)
	now := time.Now().UTC()
	for i, v := range []float64{alertHigh + 1.5, alertHigh + 2.2, alertHigh + 3} {
		payload := fmt.Sprintf(`{"value":%g,"ts":%q,"seq":%d}`, v, now.Add(time.Duration(i-3)*time.Minute).Format(time.RFC3339Nano), i+1)
		tok := c.Publish(device.Topic(), 1, false, payload)
		require.True(t, tok.WaitTimeout(10*time.Second), "publish %s", payload)
		require.NoError(t, tok.Error())
	}
}

// api calls the stack's API as one user.
type api struct {
	t     *testing.T
	base  string
	token string
}

// mustDo sends body as JSON and decodes the answer into out (when not
// nil), failing the test unless the status is want.
func (a api) mustDo(method, path string, body any, want int, out any) {
	a.t.Helper()
	b, err := json.Marshal(body)
	require.NoError(a.t, err)
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(b))
	require.NoError(a.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	require.Equal(a.t, want, resp.StatusCode, "%s %s: %s", method, path, got)
	if out != nil {
		require.NoError(a.t, json.Unmarshal(got, out), "%s %s: %s", method, path, got)
	}
}
