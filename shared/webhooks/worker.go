package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The retry schedule. After the n-th failed attempt of a delivery the next
// waits RetryDelay(n): one minute, doubling to at most an hour, each cut by
// up to a fifth at random so that the deliveries of one outage do not come
// back in step. A delivery fails for good on the first failed attempt made
// GiveUpAfter or more after it was created; until then it is retried. With
// no jitter that is the 30th attempt, 24 h 3 min after the first (1, 2, 4,
// 8, 16, 32 minutes, then hourly); with the most jitter a few more, and
// never before GiveUpAfter. The schedule runs the worker every minute, so
// an attempt may come up to that much later than its time.
const (
	FirstRetryDelay = time.Minute
	MaxRetryDelay   = time.Hour
	GiveUpAfter     = tempwatch.DeliveryRetryWindow
	// maxJitter is the largest share of a delay cut at random.
	maxJitter = 0.2
)

// RetryDelay returns the wait after the n-th failed attempt (n >= 1), cut
// by jitter (in [0, 1)) times maxJitter of itself.
func RetryDelay(n int, jitter float64) time.Duration {
	d := MaxRetryDelay
	if n < 8 { // 1 min << 6 is already above the cap
		d = min(FirstRetryDelay<<(n-1), MaxRetryDelay)
	}
	return d - time.Duration(float64(d)*maxJitter*jitter)
}

// NextState decides what becomes of a delivery created at created whose
// attempts-th attempt failed at now: retried at next, or failed.
func NextState(created, now time.Time, attempts int, jitter float64) (state string, next time.Time) {
	if now.Sub(created) >= GiveUpAfter {
		return tempwatch.DeliveryFailed, time.Time{}
	}
	return tempwatch.DeliveryPending, now.Add(RetryDelay(attempts, jitter))
}

// WorkerOptions tune a Worker; zero fields take the defaults.
type WorkerOptions struct {
	// Batch is how many due deliveries one round takes (default 16).
	Batch int
	// Concurrency is how many POSTs are in flight at once (default 4).
	Concurrency int
	// Timeout bounds each attempt, from connecting to the end of the
	// answer's headers (default 10 s).
	Timeout time.Duration
	// Now is the clock (default time.Now); tests pass a fake one.
	Now func() time.Time
	// Jitter returns a number in [0, 1) (default math/rand/v2).
	Jitter func() float64
	// Transport replaces the guarded transport; tests only, to show what
	// the guard refuses with a transport that has none.
	Transport http.RoundTripper
}

// Worker delivers alarm events to webhooks: it takes due deliveries from
// the queue, POSTs each one signed, and records every attempt.
type Worker struct {
	queue  tempwatch.DeliveryQueue
	client *http.Client
	log    *slog.Logger
	opts   WorkerOptions
}

// NewWorker returns a worker over queue whose every connection passes
// guard.
func NewWorker(queue tempwatch.DeliveryQueue, guard *Guard, log *slog.Logger, opts WorkerOptions) *Worker {
	if opts.Batch <= 0 {
		opts.Batch = 16
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	rt := opts.Transport
	if rt == nil {
		rt = guard.Transport(opts.Timeout)
	}
	return &Worker{queue: queue, client: Client(rt, opts.Timeout), log: log, opts: opts}
}

// Transport is an HTTP transport whose connections pass g: no proxy from
// the environment (a proxy would connect on our behalf, unchecked), and
// the guarded dialer for every connection.
func (g *Guard) Transport(timeout time.Duration) *http.Transport {
	d := g.Dialer()
	d.Timeout = timeout
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          16,
		IdleConnTimeout:       time.Minute,
		ForceAttemptHTTP2:     true,
	}
}

// Client is the HTTP client of deliveries over rt: it follows no redirect
// (a 3xx is the attempt's answer, a failure), so a receiver cannot send
// the worker on to an address the guard would refuse, nor anywhere else.
func Client(rt http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: rt,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// roundTime is the longest a round of RunOnce can take: its batch,
// Concurrency at a time, each attempt within Timeout.
func (w *Worker) roundTime() time.Duration {
	rounds := (w.opts.Batch + w.opts.Concurrency - 1) / w.opts.Concurrency
	return time.Duration(rounds) * w.opts.Timeout
}

// lease is how long a round of RunOnce holds the deliveries it takes:
// longer than the round can take, so no other worker takes one while it is
// being sent; a worker that dies leaves them to be taken after it.
func (w *Worker) lease() time.Duration { return w.roundTime() + w.opts.Timeout + time.Minute }

// attemptLease is how long Drain holds a delivery: Drain takes only what
// it starts at once, so one attempt and its record, with room to spare.
func (w *Worker) attemptLease() time.Duration { return w.opts.Timeout + time.Minute }

// reserve is the time kept after an attempt's Timeout for recording it:
// Drain starts no attempt that could not be recorded before the deadline.
func (w *Worker) reserve() time.Duration { return min(w.opts.Timeout/4, 2*time.Second) }

// RunOnce takes one batch of due deliveries (at most one per webhook) and
// attempts each of them, at most Concurrency at once, returning how many
// it attempted.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	due, err := w.queue.TakeDueDeliveries(ctx, tempwatch.DeliveryTake{Now: w.opts.Now(), Limit: w.opts.Batch, Lease: w.lease()})
	if err != nil {
		return 0, fmt.Errorf("take due deliveries: %w", err)
	}
	sem := make(chan struct{}, w.opts.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, d := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := w.attempt(ctx, d); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return len(due), errors.Join(errs...)
}

// Result is the answer to a scheduled run.
type Result struct {
	Attempted int  `json:"attempted"`
	More      bool `json:"more"` // stopped for time, deliveries perhaps still due
}

// done is one finished attempt of Drain.
type done struct {
	d        *tempwatch.DueDelivery
	timedOut bool
	err      error
}

// Drain delivers until nothing it may take is due or until an attempt
// started now could outlast ctx's deadline (the invocation's) with its
// record. It keeps Concurrency attempts in flight, taking a delivery as
// soon as a place frees (no round waits for its slowest attempt), and
// shares them out:
//
//   - at most one attempt in flight per webhook, and a webhook whose attempt
//     got no answer within Timeout is not taken again in the run (its
//     deliveries wait for the next run, so a hanging receiver costs at most
//     one Timeout of one place a run);
//   - the clients take turns, the one with the fewest attempts in the run
//     first (TakeDueDeliveries' Served), so a client with many webhooks
//     gets no more places than one with few while both have deliveries due.
//
// A failure to take or to record stops the taking; the attempts in flight
// are finished and the errors returned.
func (w *Worker) Drain(ctx context.Context) (Result, error) {
	var res Result
	var errs []error
	results := make(chan done, w.opts.Concurrency)
	inFlight := map[string]bool{}  // webhook ids
	backedOff := map[string]bool{} // webhook ids
	served := map[string]int{}     // client id: attempts started in the run
	running, taking := 0, true
	for {
		if taking && running < w.opts.Concurrency {
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < w.opts.Timeout+w.reserve() {
				res.More, taking = true, false
			} else {
				skip := make([]string, 0, len(inFlight)+len(backedOff))
				for id := range inFlight {
					skip = append(skip, id)
				}
				for id := range backedOff {
					skip = append(skip, id)
				}
				due, err := w.queue.TakeDueDeliveries(ctx, tempwatch.DeliveryTake{Now: w.opts.Now(),
					Limit: w.opts.Concurrency - running, Lease: w.attemptLease(), SkipWebhooks: skip, Served: served})
				switch {
				case err != nil:
					errs, taking = append(errs, fmt.Errorf("take due deliveries: %w", err)), false
				case len(due) == 0 && running == 0:
					taking = false // nothing due that the run may take
				}
				for _, d := range due {
					inFlight[d.WebhookID] = true
					served[d.ClientID]++
					running++
					res.Attempted++
					go func() {
						timedOut, err := w.attempt(ctx, d)
						results <- done{d: d, timedOut: timedOut, err: err}
					}()
				}
			}
		}
		if running == 0 {
			return res, errors.Join(errs...)
		}
		r := <-results
		running--
		delete(inFlight, r.d.WebhookID)
		if r.timedOut {
			backedOff[r.d.WebhookID] = true
		}
		if r.err != nil {
			errs, taking = append(errs, r.err), false
		}
	}
}

// Task is the task of the scheduled event: template.yaml's schedule sends
// {"task": Task}.
const Task = "deliver-webhooks"

// HandleEvent serves the notify function's scheduled {"task": Task}. Any
// other event is an error, so a mis-wired trigger shows in the function's
// errors.
func (w *Worker) HandleEvent(ctx context.Context, event json.RawMessage) (any, error) {
	var ev struct {
		Task string `json:"task"`
	}
	if err := json.Unmarshal(event, &ev); err != nil || ev.Task != Task {
		return nil, fmt.Errorf("notify: the event is not {\"task\":%q}", Task)
	}
	return w.Drain(ctx)
}

// attempt POSTs d once and records the attempt; it returns whether the
// attempt got no answer within Timeout, and only the record's failure as
// an error.
func (w *Worker) attempt(ctx context.Context, d *tempwatch.DueDelivery) (timedOut bool, _ error) {
	body, err := json.Marshal(d.Event)
	if err != nil {
		return false, fmt.Errorf("delivery %s: encode event: %w", d.ID, err)
	}
	started := w.opts.Now()
	status, f, cause := w.post(ctx, d, body, started)
	o := tempwatch.DeliveryOutcome{DeliveryID: d.ID, AttemptsBefore: d.Attempts, StartedAt: started,
		Duration: max(w.opts.Now().Sub(started), 0), Status: status, Error: f.text}
	if f.text == "" {
		o.State = tempwatch.DeliveryDelivered
	} else {
		o.State, o.NextAttemptAt = NextState(d.CreatedAt, started.Add(o.Duration), d.Attempts+1, w.opts.Jitter())
		// The webhook's id, never its URL (which may hold a token) nor its secret.
		attrs := []any{"delivery", d.ID, "webhook", d.WebhookID, "client", d.ClientID,
			"attempt", d.Attempts + 1, "status", status, "error", f.text, "state", o.State}
		var refused *RefusedError
		switch {
		case errors.As(cause, &refused):
			// What the client reads names no address; the operator's log
			// does: a webhook pointed at internal names shows here.
			w.log.WarnContext(ctx, "webhook delivery refused by the guard", append(attrs, "address", refused.Address)...)
		case f.detail != "":
			w.log.InfoContext(ctx, "webhook delivery attempt failed", append(attrs, "detail", f.detail)...)
		default:
			w.log.InfoContext(ctx, "webhook delivery attempt failed", attrs...)
		}
	}
	if err := w.queue.RecordDeliveryAttempt(ctx, o); err != nil {
		return f.timeout, fmt.Errorf("delivery %s: record attempt: %w", d.ID, err)
	}
	return f.timeout, nil
}

// maxErrorLength bounds an attempt's error text as the table does.
const maxErrorLength = 500

// failure is why an attempt got no 2xx: text for the client (last error,
// attempt log), detail for the operator's log only.
type failure struct {
	text    string // "" when delivered
	detail  string
	timeout bool
}

// post sends one attempt and returns the answer's status (0: none), why
// the attempt failed unless it got a 2xx, and the transport's error.
func (w *Worker) post(ctx context.Context, d *tempwatch.DueDelivery, body []byte, at time.Time) (int, failure, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return 0, failure{text: "the webhook's URL cannot be requested"}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tempwatch-webhooks/1")
	req.Header.Set(EventHeader, d.Event.Type)
	req.Header.Set(DeliveryHeader, d.ID)
	req.Header.Set(SignatureHeader, Sign(d.Secret, at, body))
	resp, err := w.client.Do(req)
	if err != nil {
		f := transportError(err, w.opts.Timeout)
		f.text = truncate(f.text)
		return 0, f, err
	}
	// Read a little of the answer so the connection can be reused; what
	// the receiver says is not kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	status := resp.StatusCode
	switch {
	case status < 100 || status > 599:
		return 0, failure{text: "the receiver answered an invalid status code"}, nil
	case status >= 200 && status < 300:
		return status, failure{}, nil
	case status >= 300 && status < 400:
		return status, failure{text: "HTTP " + strconv.Itoa(status) + ": redirects are not followed; point the webhook at the final URL"}, nil
	}
	return status, failure{text: "HTTP " + strconv.Itoa(status)}, nil
}

// transportError says why there was no answer, for the client without the
// URL (which url.Error would quote, and which may hold a token) and without
// any address the host resolved to (which net.OpError and the guard's
// refusal name, and which would let a client admin read internal DNS): the
// addresses, and the resolver's own words, go to detail, for the log.
func transportError(err error, timeout time.Duration) failure {
	var refused *RefusedError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var sysErr *os.SyscallError
	var ue *url.Error
	switch {
	case errors.As(err, &refused):
		return failure{text: refused.ClientError()}
	case errors.As(err, &dnsErr):
		// One text whatever the resolver said (no such host, server
		// misbehaving, timeout): the kind of failure says nothing the
		// client needs and something of our resolver's view.
		return failure{text: "DNS lookup failed", detail: dnsErr.Err}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ue) && ue.Timeout():
		return failure{text: "no answer within " + timeout.String(), timeout: true}
	case errors.As(err, &opErr):
		text := "connection failed"
		if errors.As(opErr, &sysErr) {
			text += ": " + sysErr.Err.Error() // "connection refused", "connection reset by peer"
		}
		return failure{text: text, detail: opErr.Error()}
	case errors.As(err, &ue):
		return failure{text: ue.Err.Error()}
	}
	return failure{text: err.Error()}
}

// truncate cuts an attempt's error text to maxErrorLength bytes.
func truncate(s string) string {
	if len(s) <= maxErrorLength {
		return s
	}
	// Cut on a character boundary: PostgreSQL refuses invalid UTF-8.
	return strings.ToValidUTF8(s[:maxErrorLength-3], "") + "..."
}
