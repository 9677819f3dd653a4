package redisrepo

import (
	"context"
	"time"

	"github.com/redis/rueidis"
)

// WithTimeout returns client with a per-call deadline: every Do, DoMulti,
// DoCache and DoMultiCache whose context has no deadline, or a later one,
// gets at most d (REDIS_TIMEOUT). Without it a call can wait for a dead
// Redis indefinitely: rueidis retries read-only commands on connection
// errors until the context ends, and HTTP request contexts never end on
// their own. With it, a Redis outage costs a request at most d and the
// caller sees context.DeadlineExceeded (a 503), never a hang.
//
// Receive, DoStream, DoMultiStream and Dedicated(e) are passed through:
// they are long-lived by design, and this package does not use them.
// d <= 0 returns client unchanged.
func WithTimeout(client rueidis.Client, d time.Duration) rueidis.Client {
	if d <= 0 {
		return client
	}
	if t, ok := client.(*timeoutClient); ok {
		client = t.Client // never stack two
	}
	return &timeoutClient{Client: client, d: d}
}

type timeoutClient struct {
	rueidis.Client
	d time.Duration
}

// bound returns ctx with the deadline now+d unless ctx already ends
// sooner. A non-nil lazy must be released.
func (c *timeoutClient) bound(ctx context.Context) (context.Context, *lazyDeadline) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= c.d {
		return ctx, nil
	}
	// Lazy: a read served from the client-side cache starts no timer.
	l := withLazyDeadline(ctx, time.Now().Add(c.d))
	return l, l
}

func (c *timeoutClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	ctx, l := c.bound(ctx)
	defer l.release()
	return c.Client.Do(ctx, cmd)
}

func (c *timeoutClient) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	ctx, l := c.bound(ctx)
	defer l.release()
	return c.Client.DoMulti(ctx, cmds...)
}

func (c *timeoutClient) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	ctx, l := c.bound(ctx)
	defer l.release()
	return c.Client.DoCache(ctx, cmd, ttl)
}

func (c *timeoutClient) DoMultiCache(ctx context.Context, cmds ...rueidis.CacheableTTL) []rueidis.RedisResult {
	ctx, l := c.bound(ctx)
	defer l.release()
	return c.Client.DoMultiCache(ctx, cmds...)
}

// Nodes wraps each node's client too, so that per-node calls are bounded
// as well.
func (c *timeoutClient) Nodes() map[string]rueidis.Client {
	nodes := c.Client.Nodes()
	out := make(map[string]rueidis.Client, len(nodes))
	for addr, n := range nodes {
		out[addr] = &timeoutClient{Client: n, d: c.d}
	}
	return out
}
