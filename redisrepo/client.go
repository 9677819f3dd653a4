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
// configured. timeout (if positive) bounds dialing and waiting for replies.
// Client-side caching is on: real Redis supports it.
//
// A Redis Cluster failover needs no option of its own (docs/scale.md):
// rueidis refreshes its slot map after the first MOVED, CLUSTERDOWN or
// connection error and then sends to the promoted replica, and a
// connection's cache goes with it. ConnWriteTimeout = timeout also bounds
// rueidis's background PING, so that a connection to a master that hangs
// rather than dies is closed, and the refresh happens, within timeout.
func NewClient(rawURL string, timeout time.Duration) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis: parse REDIS_URL: %w", redactURL(err))
	}
	if timeout > 0 {
		opt.Dialer.Timeout = timeout
		opt.ConnWriteTimeout = timeout
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redis: connect to %s: %w", strings.Join(opt.InitAddress, ","), err)
	}
	return c, nil
}

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
