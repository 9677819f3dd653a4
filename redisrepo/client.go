package redisrepo

import (
	"context"
	"errors"
	"fmt"
	"github.com/profilecache/profilecache/profile"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/rueidis"
)

// NewClient connects to the Redis at url (REDIS_URL): redis://, rediss://,
// extra seeds as ?addr=host:port. A Redis Cluster is detected, not
// configured. With ?master_set=name the addresses are Redis Sentinels and
// the client follows the master they name through failovers
// (docs/scale.md#redis-sentinel). timeout (if positive) bounds dialing and
// waiting for replies. Client-side caching is on: real Redis supports it.
//
// A Redis Cluster failover needs no option of its own (docs/scale.md):
// rueidis refreshes its slot map after the first MOVED, CLUSTERDOWN or
// connection error and then sends to the promoted replica, and a
// connection's cache goes with it. ConnWriteTimeout = timeout also bounds
// rueidis's background PING, so that a connection to a master that hangs
// rather than dies is closed, and the refresh happens, within timeout.
func NewClient(rawURL string, timeout time.Duration, opts ...Option) (rueidis.Client, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	opt, err := rueidis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis: parse REDIS_URL: %w", redactURL(err))
	}
	if timeout > 0 {
		opt.Dialer.Timeout = timeout
		opt.ConnWriteTimeout = timeout
	}
	if o.wakeups != nil {
		opt.OnInvalidations = o.wakeups.OnInvalidations
	}
	if opt.Sentinel.MasterSet != "" {
		if opt.TLSConfig != nil {
			// rueidis would speak TLS to the master, checked against the
			// first sentinel's name, and plain text to the sentinels.
			return nil, errors.New("redis: parse REDIS_URL: rediss:// with master_set (TLS through Sentinel) is not supported")
		}
		// The sentinels' connections have a dialer of their own: without
		// this one, dialing a black-holed sentinel waits for the OS.
		opt.Sentinel.Dialer = opt.Dialer
		opt.Sentinel.TopologyRefreshInterval = sentinelRefreshInterval
		opt.Sentinel.Password = o.sentinelPassword
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		if opt.Sentinel.MasterSet != "" {
			return nil, fmt.Errorf("redis: connect to master %q through sentinels %s: %w", opt.Sentinel.MasterSet, strings.Join(opt.InitAddress, ","), err)
		}
		return nil, fmt.Errorf("redis: connect to %s: %w", strings.Join(opt.InitAddress, ","), err)
	}
	if opt.Sentinel.MasterSet == "" && isSentinel(c, timeout) {
		c.Close()
		return nil, fmt.Errorf("redis: %s is a Redis Sentinel, not a Redis: name the master with ?master_set=<name> in REDIS_URL", strings.Join(opt.InitAddress, ","))
	}
	return c, nil
}

// isSentinel reports whether c talks to a Redis Sentinel. A sentinel
// accepts the connection (HELLO, PING) and then refuses every data
// command: without this check the program would start and fail every
// request. A server that refuses INFO (an ACL) is taken to be a Redis.
func isSentinel(c rueidis.Client, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, time.Second))
	defer cancel()
	info, err := c.Do(ctx, c.B().Info().Section("server").Build()).ToString()
	return err == nil && strings.Contains(info, "redis_mode:sentinel")
}

// Option adjusts NewClient beyond what the URL says.
type Option func(*options)

type options struct {
	sentinelPassword string
	wakeups          *Wakeups
}

// WithSentinelPassword authenticates to the sentinels of a URL with
// master_set (requirepass on the sentinels). The URL's own user and
// password are the master's: rueidis.ParseURL has no place for the
// sentinels' own.
func WithSentinelPassword(password string) Option {
	return func(o *options) { o.sentinelPassword = password }
}

// sentinelRefreshInterval is how often a Sentinel client asks the
// sentinels which node is master, besides following their +switch-master
// events: a missed event (a sentinel connection lost at the wrong moment)
// would otherwise leave it on a demoted master until restarted.
const sentinelRefreshInterval = 5 * time.Second

// redactURL drops the URL from a url.Parse error: it may hold a password.
func redactURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// fastForwardEvery is how often the embedded server's clock catches up.
const fastForwardEvery = 500 * time.Millisecond

// StartEmbedded starts an in-process Redis (miniredis) for zero-setup runs:
// its data is lost on exit, and it is never what storage tests prove
// themselves against. Client-side caching is off (miniredis has no CLIENT
// TRACKING). miniredis answers CLUSTER SLOTS, so the client runs in cluster
// mode; that is fine, every operation here stays within one user's slot.
// stop stops the server and closes the client.
func StartEmbedded() (client rueidis.Client, stop func(), err error) {
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return nil, nil, fmt.Errorf("redis: start embedded server: %w", err)
	}
	client, err = rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{m.Addr()}, DisableCache: true})
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("redis: connect to embedded server: %w", err)
	}
	// miniredis TTLs do not count down on their own: advance its clock.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(fastForwardEvery)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	})
	stop = sync.OnceFunc(func() {
		close(done)
		wg.Wait()
		client.Close()
		m.Close()
	})
	return client, stop, nil
}

// Ping reports whether Redis answers, for /readyz.
func Ping(ctx context.Context, client rueidis.Client) error {
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// unavailable marks a Redis failure (connection refused, timeout, server
// error) as profile.ErrUnavailable, so that callers answer 503, not 500.
func unavailable(err error) error {
	return fmt.Errorf("%w: %w", profile.ErrUnavailable, err)
}
