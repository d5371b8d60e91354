package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
)

var (
	buildOnce sync.Once
	bootstrap string
	buildErr  error
)

// mustBuild builds this function's bootstrap as devstack does, once per
// test binary.
func mustBuild(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "migrate-bootstrap-")
		if err != nil {
			buildErr = err
			return
		}
		bootstrap = filepath.Join(dir, "bootstrap")
		cmd := exec.Command("go", "build", "-trimpath", "-o", bootstrap, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return bootstrap
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bootstrap != "" {
		_ = os.RemoveAll(filepath.Dir(bootstrap))
	}
	os.Exit(code)
}

// environ is a minimal process environment plus kv.
func environ(kv ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, kv...)
}

// As a plain command the bootstrap migrates once, says what it did, and
// exits 0; on failure it exits 1 naming the problem and not the password.
func TestBootstrapAsACommand(t *testing.T) {
	t.Parallel()
	bin := mustBuild(t)
	run := func(env ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin)
		cmd.Env = environ(env...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return stdout.String(), stderr.String(), exit.ExitCode()
		}
		require.NoError(t, err)
		return stdout.String(), stderr.String(), 0
	}
	ms, err := postgres.Migrations()
	require.NoError(t, err)
	last := ms[len(ms)-1]
	url := pgtest.MustSchemaURL(t)

	out, errOut, code := run("DATABASE_URL=" + url)
	require.Equal(t, 0, code, "stdout %s\nstderr %s", out, errOut)
	assert.Contains(t, out, "database at version 0 (no migrations applied)")
	assert.Contains(t, out, "applied "+last.Name+" in ")
	assert.Contains(t, out, "schema at version "+strconv.Itoa(last.Version))
	require.NoError(t, pgtest.CheckSchema(t, url))

	out, _, code = run("DATABASE_URL=" + url)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "0 to apply")

	_, errOut, code = run()
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "migrate: start-up failed: config: DATABASE_URL is required")

	_, errOut, code = run("DATABASE_URL=postgres://tempwatch:s3cret-pw@127.0.0.1:1/tempwatch?connect_timeout=2")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "postgres: cannot reach 127.0.0.1:1")
	assert.NotContains(t, errOut, "s3cret-pw")
}

// receive waits for what the bootstrap sends on ch, failing the test if it
// never comes.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("no %s within a minute", what)
		var zero T
		return zero
	}
}

// runtimeAPI is the Lambda Runtime API for one bootstrap process: it hands
// out the queued events one at a time and records the answers.
type runtimeAPI struct {
	events  chan json.RawMessage
	answers chan string // "response: <body>" or "error: <body>"
}

func newRuntimeAPI(t *testing.T) (*runtimeAPI, string) {
	api := &runtimeAPI{events: make(chan json.RawMessage, 4), answers: make(chan string, 4)}
	var n atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case ev := <-api.events:
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", "inv-"+strconv.FormatInt(n.Add(1), 10))
			w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:migrate")
			_, _ = w.Write(ev)
		case <-r.Context().Done():
		}
	})
	answer := func(kind string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			api.answers <- kind + ": " + string(b)
			w.WriteHeader(http.StatusAccepted)
		}
	}
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", answer("response"))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", answer("error"))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", answer("init error"))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return api, strings.TrimPrefix(srv.URL, "http://")
}

// Under Lambda the bootstrap answers CloudFormation's custom-resource event
// at its ResponseURL (what sam deploy waits for) and a plain invoke with
// the schema version.
func TestBootstrapUnderLambda(t *testing.T) {
	t.Parallel()
	bin := mustBuild(t)
	url := pgtest.MustSchemaURL(t)
	api, addr := newRuntimeAPI(t)

	cfnResponses := make(chan cfn.Response, 1)
	cf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var resp cfn.Response
		_ = json.NewDecoder(r.Body).Decode(&resp)
		cfnResponses <- resp
	}))
	t.Cleanup(cf.Close)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = environ("DATABASE_URL="+url, "AWS_LAMBDA_RUNTIME_API="+addr)
	logs, err := os.Create(filepath.Join(t.TempDir(), "logs"))
	require.NoError(t, err)
	defer logs.Close()
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })

	event, err := json.Marshal(cfn.Event{RequestType: cfn.RequestCreate, RequestID: "req-1", ResponseURL: cf.URL,
		LogicalResourceID: "SchemaMigration", StackID: "tempwatch", ResourceType: "Custom::SchemaMigration"})
	require.NoError(t, err)
	api.events <- event
	resp := receive(t, cfnResponses, "response to CloudFormation")
	if !assert.Equal(t, cfn.StatusSuccess, resp.Status, "reason %q", resp.Reason) {
		b, _ := os.ReadFile(logs.Name())
		t.Logf("bootstrap logs:\n%s", b)
	}
	assert.Equal(t, "response: \"\"", receive(t, api.answers, "answer to the custom-resource invocation"), "the invocation itself succeeds")
	require.NoError(t, pgtest.CheckSchema(t, url))

	api.events <- json.RawMessage(`{}`)
	answer := receive(t, api.answers, "answer to the plain invoke")
	assert.True(t, strings.HasPrefix(answer, "response: "), answer)
	assert.Contains(t, answer, `"applied":[]`, "already migrated by the Create")
	assert.Contains(t, answer, `"schema_version"`)
}
