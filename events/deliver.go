package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/profilecache/profilecache/profile"
)

// Queue hands events to deliverers: each event to one of them at a time, a
// dead one's to another. Implemented by redisrepo.EventStream (a Redis
// consumer group).
type Queue interface {
	// Read returns up to count events nobody has been given, waiting up to
	// block for one. An event that does not decode comes with an empty
	// Type, and the error says why.
	Read(ctx context.Context, count int64, block time.Duration) ([]profile.Event, error)
	// Claim takes over events given to a deliverer that has neither
	// acknowledged nor extended them for minIdle.
	Claim(ctx context.Context, minIdle time.Duration, count int64) ([]profile.Event, error)
	// Extend keeps this deliverer's claim on ids alive.
	Extend(ctx context.Context, ids ...string) error
	// Ack ends the delivery of ids.
	Ack(ctx context.Context, ids ...string) error
}

// Delivery results, as Options.OnResult sees them.
const (
	ResultDelivered = "delivered" // the receiver answered 2xx
	ResultRetry     = "retry"     // an attempt failed; another follows
	ResultDead      = "dead"      // given up: see docs/events.md
)

// Defaults of Options.
const (
	DefaultVisibility = 30 * time.Second
	DefaultMaxAge     = 24 * time.Hour
	DefaultTimeout    = 10 * time.Second
	baseDelay         = 500 * time.Millisecond
	maxDelay          = time.Minute
	batchSize         = 16
)

// Options configure a Deliverer. URL, Signer and Queue are required.
type Options struct {
	URL    string
	Signer *Signer
	Queue  Queue
	// Client posts; default one with Timeout (EVENTS_WEBHOOK_TIMEOUT) that
	// does not follow redirects.
	Client  *http.Client
	Timeout time.Duration
	// Visibility is how long an event given to a deliverer that stopped
	// extending it waits before another deliverer claims it
	// (EVENTS_WEBHOOK_VISIBILITY). Default DefaultVisibility.
	Visibility time.Duration
	// Block bounds one wait for new events; it must stay below the Redis
	// call timeout. Default Visibility/3, at most 1s.
	Block time.Duration
	// MaxAge: an event older than this that still fails is given up
	// (EVENTS_WEBHOOK_MAX_AGE). Default DefaultMaxAge.
	MaxAge time.Duration
	Logger *slog.Logger
	// OnResult, when set, sees each attempt's outcome (Result*).
	OnResult func(result string)
	Now      func() time.Time
}

// Deliverer posts events to the webhook, one at a time, oldest first.
type Deliverer struct {
	o Options
}

// NewDeliverer checks o and fills in the defaults.
func NewDeliverer(o Options) (*Deliverer, error) {
	if o.URL == "" || o.Signer == nil || o.Queue == nil {
		return nil, errors.New("events: deliverer needs a URL, a signer and a queue")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Visibility <= 0 {
		o.Visibility = DefaultVisibility
	}
	if o.Block <= 0 {
		o.Block = min(o.Visibility/3, time.Second)
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Deliverer{o: o}, nil
}

// Run delivers until ctx ends. Events it holds then stay pending, and
// another instance (or this one, restarted) claims them after Visibility.
func (d *Deliverer) Run(ctx context.Context) {
	var lastClaim time.Time
	failures := 0
	for ctx.Err() == nil {
		var batch []profile.Event
		var err error
		if now := d.o.Now(); now.Sub(lastClaim) >= d.o.Visibility/2 {
			lastClaim = now
			batch, err = d.o.Queue.Claim(ctx, d.o.Visibility, batchSize)
		}
		if err == nil && len(batch) == 0 {
			batch, err = d.o.Queue.Read(ctx, batchSize, d.o.Block)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.o.Logger.WarnContext(ctx, "events: read the queue", "error", err)
			if len(batch) == 0 {
				failures++
				sleep(ctx, backoff(failures))
				continue
			}
		}
		failures = 0
		d.deliverBatch(ctx, batch)
	}
}

// deliverBatch delivers batch in order, keeping the claim on what is left
// of it alive meanwhile.
func (d *Deliverer) deliverBatch(ctx context.Context, batch []profile.Event) {
	if len(batch) == 0 {
		return
	}
	var mu sync.Mutex
	left := make([]string, len(batch))
	for i, e := range batch {
		left[i] = e.ID
	}
	hctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d.o.Visibility / 3)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			ids := append([]string(nil), left...)
			mu.Unlock()
			if err := d.o.Queue.Extend(hctx, ids...); err != nil && hctx.Err() == nil {
				d.o.Logger.WarnContext(ctx, "events: extend the claim", "error", err)
			}
		}
	})
	for _, e := range batch {
		if !d.deliver(ctx, e) {
			break // ctx ended: the rest stays pending
		}
		mu.Lock()
		left = left[1:]
		mu.Unlock()
	}
	stop()
	wg.Wait()
}

// deliver posts e until the receiver takes it or it is given up, then
// acknowledges it. It returns false when ctx ended first.
func (d *Deliverer) deliver(ctx context.Context, e profile.Event) bool {
	body := Body(e) // the same bytes on every attempt
	for attempt := 1; ; attempt++ {
		why := ""
		switch {
		case e.Type == "":
			why = "undecodable stream entry"
		default:
			status, err := d.post(ctx, e.ID, body)
			if err == nil && status/100 == 2 {
				d.result(ResultDelivered)
				d.ack(ctx, e.ID)
				return true
			}
			if ctx.Err() != nil {
				return false
			}
			if err == nil && !retryable(status) {
				why = fmt.Sprintf("the receiver refused it with %d", status)
			} else if age := d.o.Now().Sub(e.Time); age > d.o.MaxAge {
				why = fmt.Sprintf("still failing after %s (EVENTS_WEBHOOK_MAX_AGE)", age.Round(time.Second))
			} else {
				d.result(ResultRetry)
				d.o.Logger.WarnContext(ctx, "events: delivery failed, retrying", "id", e.ID, "attempt", attempt,
					"status", status, "error", err)
				if !sleep(ctx, backoff(attempt)) {
					return false
				}
				continue
			}
		}
		d.result(ResultDead)
		d.o.Logger.ErrorContext(ctx, "events: delivery given up", "id", e.ID, "type", e.Type,
			"user", e.UserID, "attempts", attempt, "why", why)
		d.ack(ctx, e.ID)
		return true
	}
}

// retryable: a status that another attempt may turn into a 2xx. Any other
// 3xx or 4xx is the receiver saying no to these very bytes, which a retry
// sends again unchanged.
func retryable(status int) bool {
	return status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
}

// post makes one attempt, signed with a fresh timestamp, and returns the
// status.
func (d *Deliverer) post(ctx context.Context, id string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.o.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ts := d.o.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "profilecache-events")
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, d.o.Signer.Sign(id, ts, body))
	resp, err := d.o.Client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	resp.Body.Close()
	return resp.StatusCode, nil
}

// ack ends e's delivery. A lost ack means one more delivery, after
// Visibility, never a lost event.
func (d *Deliverer) ack(ctx context.Context, id string) {
	// Even while shutting down: the receiver has it.
	if err := d.o.Queue.Ack(context.WithoutCancel(ctx), id); err != nil {
		d.o.Logger.WarnContext(ctx, "events: acknowledge a delivery", "id", id, "error", err)
	}
}

func (d *Deliverer) result(r string) {
	if d.o.OnResult != nil {
		d.o.OnResult(r)
	}
}

// backoff is the pause before attempt n+1: exponential from baseDelay up to
// maxDelay, with jitter, so that instances retrying a receiver that came
// back do not hit it in step.
func backoff(n int) time.Duration {
	d := maxDelay
	if n < 20 {
		d = min(baseDelay<<(n-1), maxDelay)
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
