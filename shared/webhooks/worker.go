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
	GiveUpAfter     = 24 * time.Hour
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

// roundTime is the longest a round can take: its batch, Concurrency at a
// time, each attempt within Timeout.
func (w *Worker) roundTime() time.Duration {
	rounds := (w.opts.Batch + w.opts.Concurrency - 1) / w.opts.Concurrency
	return time.Duration(rounds) * w.opts.Timeout
}

// lease is how long a round holds the deliveries it takes: longer than the
// round can take, so no other worker takes one while it is being sent; a
// worker that dies leaves them to be taken after it.
func (w *Worker) lease() time.Duration { return w.roundTime() + w.opts.Timeout + time.Minute }

// RunOnce takes one batch of due deliveries and attempts each of them, at
// most Concurrency at once, returning how many it attempted.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	due, err := w.queue.TakeDueDeliveries(ctx, w.opts.Now(), w.opts.Batch, w.lease())
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
			if err := w.attempt(ctx, d); err != nil {
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
	More      bool `json:"more"` // stopped for time with deliveries still due
}

// Drain runs rounds until none is due or until the next round could
// outlast ctx's deadline (the invocation's).
func (w *Worker) Drain(ctx context.Context) (Result, error) {
	var res Result
	for {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < w.roundTime() {
			res.More = true
			return res, nil
		}
		n, err := w.RunOnce(ctx)
		res.Attempted += n
		if err != nil || n < w.opts.Batch {
			return res, err
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

// attempt POSTs d once and records the attempt; only the record's failure
// is returned.
func (w *Worker) attempt(ctx context.Context, d *tempwatch.DueDelivery) error {
	body, err := json.Marshal(d.Event)
	if err != nil {
		return fmt.Errorf("delivery %s: encode event: %w", d.ID, err)
	}
	started := w.opts.Now()
	status, failure := w.post(ctx, d, body, started)
	o := tempwatch.DeliveryOutcome{DeliveryID: d.ID, AttemptsBefore: d.Attempts, StartedAt: started,
		Duration: max(w.opts.Now().Sub(started), 0), Status: status, Error: failure}
	if failure == "" {
		o.State = tempwatch.DeliveryDelivered
	} else {
		o.State, o.NextAttemptAt = NextState(d.CreatedAt, started.Add(o.Duration), d.Attempts+1, w.opts.Jitter())
		// The webhook's id, never its URL (which may hold a token) nor its secret.
		w.log.InfoContext(ctx, "webhook delivery attempt failed", "delivery", d.ID, "webhook", d.WebhookID,
			"attempt", d.Attempts+1, "status", status, "error", failure, "state", o.State)
	}
	if err := w.queue.RecordDeliveryAttempt(ctx, o); err != nil {
		return fmt.Errorf("delivery %s: record attempt: %w", d.ID, err)
	}
	return nil
}

// maxErrorLength bounds an attempt's error text as the table does.
const maxErrorLength = 500

// post sends one attempt and returns the answer's status (0: none) and,
// unless it was a 2xx, why the attempt failed.
func (w *Worker) post(ctx context.Context, d *tempwatch.DueDelivery, body []byte, at time.Time) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "the webhook's URL cannot be requested"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tempwatch-webhooks/1")
	req.Header.Set(EventHeader, d.Event.Type)
	req.Header.Set(DeliveryHeader, d.ID)
	req.Header.Set(SignatureHeader, Sign(d.Secret, at, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, truncate(transportError(err, w.opts.Timeout))
	}
	// Read a little of the answer so the connection can be reused; what
	// the receiver says is not kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	status := resp.StatusCode
	switch {
	case status < 100 || status > 599:
		return 0, "the receiver answered an invalid status code"
	case status >= 200 && status < 300:
		return status, ""
	case status >= 300 && status < 400:
		return status, "HTTP " + strconv.Itoa(status) + ": redirects are not followed; point the webhook at the final URL"
	}
	return status, "HTTP " + strconv.Itoa(status)
}

// transportError says why there was no answer, without the URL (which
// url.Error would quote, and which may hold a token).
func transportError(err error, timeout time.Duration) string {
	var refused *RefusedError
	var dnsErr *net.DNSError
	var ue *url.Error
	switch {
	case errors.As(err, &refused):
		return refused.Error()
	case errors.As(err, &dnsErr):
		return "DNS lookup failed: " + dnsErr.Err
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ue) && ue.Timeout():
		return "no answer within " + timeout.String()
	case errors.As(err, &ue):
		return ue.Err.Error()
	}
	return err.Error()
}

func truncate(s string) string {
	if len(s) <= maxErrorLength {
		return s
	}
	// Cut on a character boundary: PostgreSQL refuses invalid UTF-8.
	return strings.ToValidUTF8(s[:maxErrorLength-3], "") + "..."
}
