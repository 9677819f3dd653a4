package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/events"
	"github.com/profilecache/profilecache/internal/metrics"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// eventsConfig configures the event stream and its webhook
// (docs/events.md). Embedded in Config.
type eventsConfig struct {
	// Events records session and profile events in the stream (EVENTS,
	// default on: one XADD per event).
	Events       bool
	EventsMaxLen int64
	// InstanceID names this process in events and as a deliverer
	// (INSTANCE_ID; default <hostname>-<random>, new on every start).
	InstanceID string
	// The webhook: EVENTS_WEBHOOK_URL and _SECRET (required with the URL),
	// _TIMEOUT per attempt, _VISIBILITY before another instance takes over
	// an event whose deliverer went silent, _MAX_AGE before a failing event
	// is given up.
	EventsWebhookURL        string
	EventsWebhookSecret     string
	EventsWebhookTimeout    time.Duration
	EventsWebhookVisibility time.Duration
	EventsWebhookMaxAge     time.Duration
}

// vars are eventsConfig's entries in the registry (config_vars.go).
func (x *eventsConfig) vars() []envVar {
	return []envVar{
		{Name: "EVENTS", Group: groupEvents, Default: "true", parse: setBool(&x.Events),
			Doc: "record every session created, revoked or timed out and every profile reload or invalidation in the Redis Stream `pc:events` ([events.md](events.md)); one `XADD` per event"},
		{Name: "EVENTS_MAX_LEN", Group: groupEvents, Default: strconv.Itoa(redisrepo.DefaultEventsMaxLen),
			parse: func(v string) (err error) {
				if x.EventsMaxLen, err = strconv.ParseInt(v, 10, 64); err != nil || x.EventsMaxLen < 1 {
					return fmt.Errorf("invalid length %q (a whole number >= 1)", v)
				}
				return nil
			},
			Doc: "the stream keeps about this many newest events (`XADD MAXLEN ~`)"},
		{Name: "INSTANCE_ID", Group: groupEvents, Unset: "host name + random suffix, new at each start", parse: setString(&x.InstanceID),
			Doc: "names the instance in events and as a webhook deliverer; must differ between instances"},
		{Name: "EVENTS_WEBHOOK_URL", Group: groupEvents, Unset: "unset: no webhook", parse: setString(&x.EventsWebhookURL),
			Doc: "POST every event to this URL, signed the [Standard Webhooks](https://www.standardwebhooks.com) way, at least once, retried with backoff ([events.md](events.md#webhook-delivery))"},
		{Name: "EVENTS_WEBHOOK_SECRET", Group: groupEvents, Unset: "unset", parse: setString(&x.EventsWebhookSecret),
			Doc: "the webhook's signing secret, required with `EVENTS_WEBHOOK_URL`: `whsec_` + base64 of 24–64 random bytes"},
		{Name: "EVENTS_WEBHOOK_TIMEOUT", Group: groupEvents, Default: durationDefault(events.DefaultTimeout),
			parse: setPositive(&x.EventsWebhookTimeout, "30s"),
			Doc:   "bound on one delivery attempt"},
		{Name: "EVENTS_WEBHOOK_VISIBILITY", Group: groupEvents, Default: durationDefault(events.DefaultVisibility),
			parse: setPositive(&x.EventsWebhookVisibility, "30s"),
			Doc:   "an event whose deliverer went silent (a killed instance) this long is delivered by another instance"},
		{Name: "EVENTS_WEBHOOK_MAX_AGE", Group: groupEvents, Default: durationDefault(events.DefaultMaxAge),
			parse: setPositive(&x.EventsWebhookMaxAge, "30s"),
			Doc:   "an event still failing this long after it happened is given up (logged, counted)"},
	}
}

func (x *eventsConfig) check() []error {
	var errs []error
	if x.EventsWebhookURL == "" {
		return nil
	}
	if !x.Events {
		errs = append(errs, errors.New("EVENTS_WEBHOOK_URL is set, but EVENTS=false: the webhook delivers the stream's events"))
	}
	if x.EventsWebhookSecret == "" {
		errs = append(errs, errors.New("EVENTS_WEBHOOK_SECRET is required with EVENTS_WEBHOOK_URL (whsec_ + base64 of 24 to 64 random bytes)"))
	} else if _, err := events.NewSigner(x.EventsWebhookSecret); err != nil {
		errs = append(errs, fmt.Errorf("EVENTS_WEBHOOK_SECRET: %w", err))
	}
	return errs
}

// instanceID is INSTANCE_ID, or the host name with a random suffix: two
// processes on one host must not share a consumer name.
func (x *eventsConfig) instanceID() string {
	if x.InstanceID != "" {
		return x.InstanceID
	}
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// eventsWiring is what newApp plugs in: the recorder, and the webhook
// deliverer to start once everything else is up.
type eventsWiring struct {
	recorder profile.Events
	start    func() (stop func())
}

// newEvents builds the event stream and, with a webhook URL, its
// deliverer. Events off: a recorder that records nothing.
func newEvents(cfg Config, client rueidis.Client, m *metrics.Metrics, logger *slog.Logger) (eventsWiring, error) {
	noop := eventsWiring{recorder: profile.NoEvents{}, start: func() func() { return func() {} }}
	if !cfg.Events {
		return noop, nil
	}
	lost := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "profilecache", Name: "events_lost_total",
		Help: "Session and profile events that could not be added to the stream."})
	delivered := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "profilecache", Name: "events_webhook_total",
		Help: "Webhook delivery attempts by result: delivered, retry, dead (given up)."}, []string{"result"})
	if err := m.Registry().Register(lost); err != nil {
		return noop, fmt.Errorf("events metrics: %w", err)
	}
	instance := cfg.instanceID()
	stream := redisrepo.NewEventStream(client, redisrepo.EventOptions{
		MaxLen: cfg.EventsMaxLen, Instance: instance, Logger: logger, OnLost: lost.Inc,
	})
	w := eventsWiring{recorder: stream, start: noop.start}
	if cfg.EventsWebhookURL == "" {
		return w, nil
	}
	if err := m.Registry().Register(delivered); err != nil {
		return noop, fmt.Errorf("events metrics: %w", err)
	}
	signer, err := events.NewSigner(cfg.EventsWebhookSecret)
	if err != nil {
		return noop, err
	}
	d, err := events.NewDeliverer(events.Options{
		URL: cfg.EventsWebhookURL, Signer: signer, Queue: stream, Timeout: cfg.EventsWebhookTimeout,
		Visibility: cfg.EventsWebhookVisibility, MaxAge: cfg.EventsWebhookMaxAge, Logger: logger,
		// Each wait for new events is one Redis call: below REDIS_TIMEOUT.
		Block:    min(time.Second, cfg.RedisTimeout/2, cfg.EventsWebhookVisibility/3),
		OnResult: func(r string) { delivered.WithLabelValues(r).Inc() },
	})
	if err != nil {
		return noop, err
	}
	w.start = func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			// Until the group exists, nothing can be delivered; Redis may
			// just be starting.
			for ctx.Err() == nil {
				err := stream.EnsureGroup(ctx)
				if err == nil {
					break
				}
				logger.Warn("events: create the delivery group", "error", err)
				sleepCtx(ctx, time.Second)
			}
			logger.Info("events: delivering to the webhook", "instance", instance, "visibility", cfg.EventsWebhookVisibility.String())
			d.Run(ctx)
		})
		return func() { cancel(); wg.Wait() }
	}
	return w, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
