package stack

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tempwatch/tempwatch/infra/gateway/sam"
	"github.com/tempwatch/tempwatch/shared/metrics/replay"
)

// maxPayload is Lambda's limit for a synchronous request or response.
const maxPayload = 6 << 20

const runtimePrefix = "/2018-06-01/runtime"

// errorPayload is a Lambda function error as the Invoke API returns it.
type errorPayload struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType,omitempty"`
	StackTrace   []string `json:"stackTrace,omitempty"`
}

func errorJSON(typ, msg string) []byte {
	b, _ := json.Marshal(errorPayload{ErrorMessage: msg, ErrorType: typ})
	return b
}

// result is the outcome of one invocation: a response payload, or a
// function error payload when funcErr is set, or a streamed answer.
type result struct {
	payload []byte
	funcErr bool
	// stream, for an invocation that takes one, is the function's answer
	// as it posts it (a streamed response); the caller reads and closes it.
	stream io.ReadCloser
}

type invocation struct {
	id      string
	payload []byte
	done    chan result // buffered 1; written once through finish
	once    sync.Once
	// streaming: the caller takes a streamed answer as it comes, as
	// InvokeWithResponseStream does, instead of a payload.
	streaming bool
	// abandoned is closed when the caller stopped waiting for the result.
	abandoned chan struct{}
}

// streamContentType is what a function posts a streamed answer as
// (aws-lambda-go, for a handler that returns a reader of this type).
const streamContentType = "application/vnd.awslambda.http-integration-response"

// streamBody is a streamed answer on its way from the function's POST to
// the invocation's caller. At the end of the body, an error the runtime
// reported in its trailer (the function failed mid-stream) is the
// reader's error, so the caller cuts its answer off.
type streamBody struct {
	r    *http.Request
	done chan struct{}
	once sync.Once
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.r.Body.Read(p)
	if err == io.EOF {
		if typ := b.r.Trailer.Get("Lambda-Runtime-Function-Error-Type"); typ != "" {
			return n, fmt.Errorf("the function failed mid-stream: %s", typ)
		}
	}
	return n, err
}

func (b *streamBody) Close() error {
	b.once.Do(func() { close(b.done) })
	return nil
}

func (inv *invocation) finish(r result) bool {
	ok := false
	inv.once.Do(func() { inv.done <- r; ok = true })
	return ok
}

// pool runs the warm instances of one function; an invocation goes to
// whichever instance asks for the next event first, so each instance serves
// one invocation at a time, as on Lambda.
type pool struct {
	fn        sam.Function
	binary    string
	env       []string
	queue     chan *invocation
	instances []*instance
	size      int // number of instances, fixed before they start
	logs      io.Writer
	logMu     *sync.Mutex
	metrics   *replay.Registry
}

// invoke queues payload for the function and waits for its result.
func (p *pool) invoke(ctx context.Context, payload []byte) (result, error) {
	return p.run(ctx, &invocation{id: newID(), payload: payload, done: make(chan result, 1), abandoned: make(chan struct{})})
}

// invokeStream is invoke for a caller that takes a streamed answer.
func (p *pool) invokeStream(ctx context.Context, payload []byte) (result, error) {
	return p.run(ctx, &invocation{id: newID(), payload: payload, done: make(chan result, 1), streaming: true, abandoned: make(chan struct{})})
}

func (p *pool) run(ctx context.Context, inv *invocation) (result, error) {
	select {
	case p.queue <- inv:
	case <-ctx.Done():
		close(inv.abandoned)
		return result{}, ctx.Err()
	}
	select {
	case r := <-inv.done:
		return r, nil
	case <-ctx.Done():
		close(inv.abandoned)
		return result{}, ctx.Err()
	}
}

// instance is one bootstrap process with its own Runtime API server.
type instance struct {
	pool    *pool
	num     int
	srv     *http.Server
	addr    string
	ready   chan struct{} // closed at the first GET next
	initErr chan string   // init/error payloads and early exits before ready

	mu        sync.Mutex
	current   *invocation
	timer     *time.Timer
	cmd       *exec.Cmd
	stopping  bool
	readyOnce sync.Once

	stop chan struct{}
	done chan struct{} // closed when the supervisor has exited
}

func newInstance(p *pool, num int) (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runtime API for %s: %w", p.fn.Name, err)
	}
	in := &instance{
		pool: p, num: num, addr: ln.Addr().String(),
		ready: make(chan struct{}), initErr: make(chan string, 4),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+runtimePrefix+"/invocation/next", in.handleNext)
	mux.HandleFunc("POST "+runtimePrefix+"/invocation/{id}/response", in.handleResponse)
	mux.HandleFunc("POST "+runtimePrefix+"/invocation/{id}/error", in.handleError)
	mux.HandleFunc("POST "+runtimePrefix+"/init/error", in.handleInitError)
	in.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = in.srv.Serve(ln) }()
	go in.supervise()
	return in, nil
}

func (in *instance) label() string {
	if in.pool.size > 1 {
		return fmt.Sprintf("%s#%d", in.pool.fn.Name, in.num)
	}
	return in.pool.fn.Name
}

// supervise runs the bootstrap process, restarting it when it exits, and
// fails the invocation it was serving.
func (in *instance) supervise() {
	defer close(in.done)
	backoff := 100 * time.Millisecond
	for {
		started := time.Now()
		err := in.runOnce()
		in.mu.Lock()
		stopping := in.stopping
		inv := in.current
		in.current = nil
		if in.timer != nil {
			in.timer.Stop()
		}
		in.mu.Unlock()
		if stopping {
			if inv != nil {
				inv.finish(result{payload: errorJSON("Runtime.ExitError", "devstack is shutting down"), funcErr: true})
			}
			return
		}
		if inv != nil {
			msg := fmt.Sprintf("RequestId: %s Error: Runtime exited: %v", inv.id, err)
			inv.finish(result{payload: errorJSON("Runtime.ExitError", msg), funcErr: true})
		}
		in.logf("process exited (%v); restarting", err)
		select {
		case <-in.ready:
		default:
			select {
			case in.initErr <- fmt.Sprintf("process exited before asking for an event: %v", err):
			default:
			}
		}
		if time.Since(started) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-in.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (in *instance) runOnce() error {
	cmd := exec.Command(in.pool.binary)
	cmd.Env = append(append([]string{}, in.pool.env...), "AWS_LAMBDA_RUNTIME_API="+in.addr,
		"AWS_LAMBDA_LOG_STREAM_NAME="+fmt.Sprintf("devstack/%s/%d", in.pool.fn.Name, in.num))
	cmd.Dir = dirOf(in.pool.binary)
	out := &prefixWriter{w: in.pool.logs, mu: in.pool.logMu, prefix: "[" + in.label() + "] ", metrics: in.pool.metrics}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	in.mu.Lock()
	if in.stopping {
		in.mu.Unlock()
		return errors.New("stopping")
	}
	if err := cmd.Start(); err != nil {
		in.mu.Unlock()
		return err
	}
	in.cmd = cmd
	in.mu.Unlock()
	err := cmd.Wait()
	out.Flush()
	in.mu.Lock()
	in.cmd = nil
	in.mu.Unlock()
	if err == nil {
		err = errors.New("exit status 0")
	}
	return err
}

// kill ends the process; the supervisor restarts it unless stopping.
func (in *instance) kill() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd != nil && in.cmd.Process != nil {
		_ = in.cmd.Process.Kill()
	}
}

func (in *instance) shutdown() {
	in.mu.Lock()
	in.stopping = true
	in.mu.Unlock()
	close(in.stop)
	in.kill()
	<-in.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = in.srv.Shutdown(ctx)
	_ = in.srv.Close()
}

func (in *instance) logf(format string, args ...any) {
	in.pool.logMu.Lock()
	defer in.pool.logMu.Unlock()
	fmt.Fprintf(in.pool.logs, "[%s] devstack: %s\n", in.label(), fmt.Sprintf(format, args...))
}

func (in *instance) handleNext(w http.ResponseWriter, r *http.Request) {
	in.readyOnce.Do(func() { close(in.ready) })
	var inv *invocation
	select {
	case inv = <-in.pool.queue:
	case <-r.Context().Done():
		return
	case <-in.stop:
		http.Error(w, "shutting down", http.StatusGone)
		return
	}
	fn := in.pool.fn
	deadline := time.Now().Add(fn.Timeout)
	in.mu.Lock()
	if in.current != nil {
		// The runtime asked for a new event without answering the last one.
		in.current.finish(result{payload: errorJSON("Runtime.InvalidResponse", "runtime asked for the next event without answering"), funcErr: true})
	}
	in.current = inv
	in.timer = time.AfterFunc(fn.Timeout, func() {
		msg := fmt.Sprintf("%s %s Task timed out after %.2f seconds", time.Now().UTC().Format(time.RFC3339), inv.id, fn.Timeout.Seconds())
		if inv.finish(result{payload: errorJSON("Sandbox.Timedout", msg), funcErr: true}) {
			in.logf("invocation %s timed out after %s; restarting the process", inv.id, fn.Timeout)
			in.kill()
		}
	})
	in.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", functionARN(fn.LogicalID))
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-"+strconv.FormatInt(time.Now().Unix(), 16)+"-"+newID()[:24]+";Parent="+newID()[:16]+";Sampled=0")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

// take detaches the current invocation if its id matches.
func (in *instance) take(id string) *invocation {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.current == nil || in.current.id != id {
		return nil
	}
	inv := in.current
	in.current = nil
	if in.timer != nil {
		in.timer.Stop()
	}
	return inv
}

func (in *instance) handleResponse(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") == streamContentType {
		in.handleStream(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	inv := in.take(r.PathValue("id"))
	if inv == nil {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or already answered request id")
		return
	}
	if len(body) > maxPayload {
		inv.finish(result{payload: errorJSON("Function.ResponseSizeTooLarge", "Response payload size exceeded maximum allowed payload size (6291556 bytes)."), funcErr: true})
		writeRuntimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response exceeds 6 MB")
		return
	}
	inv.finish(result{payload: body})
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}

// handleStream hands a streamed answer to a caller that takes one, and
// answers the function once the caller is done with it; what the caller
// left unread is read and dropped, so the function finishes as it would on
// Lambda. A caller that takes a payload gets the stream's bytes, up to
// Lambda's synchronous limit.
func (in *instance) handleStream(w http.ResponseWriter, r *http.Request) {
	inv := in.take(r.PathValue("id"))
	if inv == nil {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or already answered request id")
		return
	}
	body := &streamBody{r: r, done: make(chan struct{})}
	if !inv.streaming {
		b, err := io.ReadAll(io.LimitReader(body, maxPayload+1))
		switch {
		case err != nil:
			inv.finish(result{payload: errorJSON("Runtime.StreamError", err.Error()), funcErr: true})
		case len(b) > maxPayload:
			inv.finish(result{payload: errorJSON("Function.ResponseSizeTooLarge", "Response payload size exceeded maximum allowed payload size (6291556 bytes)."), funcErr: true})
		default:
			inv.finish(result{payload: b})
		}
	} else if inv.finish(result{stream: body}) {
		select {
		case <-body.done:
		case <-inv.abandoned:
		case <-r.Context().Done():
		}
	}
	_, _ = io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}

func (in *instance) handleError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxPayload))
	inv := in.take(r.PathValue("id"))
	if inv == nil {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or already answered request id")
		return
	}
	inv.finish(result{payload: normaliseError(body, r.Header.Get("Lambda-Runtime-Function-Error-Type")), funcErr: true})
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}

func (in *instance) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	in.logf("init error: %s", strings.TrimSpace(string(body)))
	select {
	case in.initErr <- string(normaliseError(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))):
	default:
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}

// normaliseError keeps a runtime's error JSON, or wraps what it sent.
func normaliseError(body []byte, typ string) []byte {
	var e errorPayload
	if json.Unmarshal(body, &e) == nil && (e.ErrorMessage != "" || e.ErrorType != "") {
		return body
	}
	if typ == "" {
		typ = "Runtime.Unknown"
	}
	return errorJSON(typ, strings.TrimSpace(string(body)))
}

func writeRuntimeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorJSON(typ, msg))
}

func functionARN(name string) string {
	return "arn:aws:lambda:" + region + ":" + accountID + ":function:" + name
}

const (
	region    = "us-east-1"
	accountID = "000000000000"
)

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// prefixWriter writes whole lines to w, each starting with prefix. With
// metrics, a line that is an EMF document goes there instead: it is the
// invocation's metrics, served at MetricsURL, not a log line to read.
type prefixWriter struct {
	w       io.Writer
	mu      *sync.Mutex
	prefix  string
	metrics *replay.Registry
	bufMu   sync.Mutex
	buf     []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.bufMu.Lock()
	defer p.bufMu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		if p.metrics == nil || !p.metrics.ApplyLine(p.buf[:i]) {
			p.emit(p.buf[:i+1])
		}
		p.buf = p.buf[i+1:]
	}
	if len(p.buf) > 64<<10 {
		p.emit(append(p.buf, '\n'))
		p.buf = nil
	}
	return len(b), nil
}

// Flush writes a trailing partial line.
func (p *prefixWriter) Flush() {
	p.bufMu.Lock()
	defer p.bufMu.Unlock()
	if len(p.buf) > 0 {
		p.emit(append(p.buf, '\n'))
		p.buf = nil
	}
}

func (p *prefixWriter) emit(line []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := bufio.NewWriter(p.w)
	_, _ = w.WriteString(p.prefix)
	_, _ = w.Write(line)
	_ = w.Flush()
}
