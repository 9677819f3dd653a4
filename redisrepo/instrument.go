package redisrepo

import (
	"cmp"
	"context"
	"errors"
	"net"
	"os"
	"time"

	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/trace"
)

// Kinds of Redis errors, as Hooks.OnError reports them.
const (
	ErrorTimeout = "timeout" // no reply in time (REDIS_TIMEOUT, or the caller's deadline)
	ErrorNetwork = "network" // connection refused, reset, closed
	ErrorServer  = "server"  // an error reply: OOM, READONLY, WRONGTYPE, EXECABORT, ...
)

// Hooks observe a client's traffic. Nil hooks are skipped.
type Hooks struct {
	// OnError sees every failed command with its kind. Nil replies, a
	// script missing from the script cache (rueidis then sends the script
	// itself) and callers that cancelled are not Redis errors.
	OnError func(kind string)
	// OnCache sees every read through the client-side cache (DoCache and
	// each command of DoMultiCache): hit means it was served locally.
	OnCache func(hit bool)
	// OnRoundTrip sees how long every call that went to Redis took, failed
	// or not: a Do, a DoMulti, and a DoCache or DoMultiCache that missed.
	// Cache hits are not round trips and are not seen.
	OnRoundTrip func(d time.Duration)
	// Tracer, when set, gives every round trip to Redis made within a
	// recording span a child span (trace.go); cache hits send nothing and
	// get none.
	Tracer trace.Tracer
}

// Instrument returns client reporting to h. Wrap the timeout client
// (WithTimeout) with it, not the other way round, so that the timeouts it
// imposes are counted:
//
//	client = Instrument(WithTimeout(client, d), hooks)
//
// Errors inside a MULTI/EXEC reply array are not seen: only the EXEC reply
// itself (EXECABORT, a dropped connection) is.
func Instrument(client rueidis.Client, h Hooks) rueidis.Client {
	if h.OnError == nil && h.OnCache == nil && h.OnRoundTrip == nil && h.Tracer == nil {
		return client
	}
	return &instrumented{Client: client, h: h}
}

type instrumented struct {
	rueidis.Client
	h Hooks
}

func (c *instrumented) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	t := c.trace(ctx, cmd.Commands())
	start := c.start()
	r := c.Client.Do(ctx, cmd)
	c.roundTrip(start)
	c.observe(r.Error())
	if t.on() {
		t.end(ctx, 1, r.Error())
	}
	return r
}

func (c *instrumented) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	var t tracedCall
	if len(cmds) > 0 {
		t = c.trace(ctx, cmds[0].Commands())
	}
	start := c.start()
	rs := c.Client.DoMulti(ctx, cmds...)
	c.roundTrip(start)
	var first error
	for _, r := range rs {
		c.observe(r.Error())
		first = cmp.Or(first, r.Error())
	}
	if t.on() {
		t.end(ctx, len(cmds), first)
	}
	return rs
}

func (c *instrumented) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	t := c.trace(ctx, cmd.Commands())
	start := c.start()
	r := c.Client.DoCache(ctx, cmd, ttl)
	if !r.IsCacheHit() {
		c.roundTrip(start)
	}
	c.observeCached(r)
	if t.on() && !r.IsCacheHit() {
		t.end(ctx, 1, r.Error())
	}
	return r
}

func (c *instrumented) DoMultiCache(ctx context.Context, cmds ...rueidis.CacheableTTL) []rueidis.RedisResult {
	var t tracedCall
	if len(cmds) > 0 {
		t = c.trace(ctx, cmds[0].Cmd.Commands())
	}
	start := c.start()
	rs := c.Client.DoMultiCache(ctx, cmds...)
	var first error
	misses := 0
	for _, r := range rs {
		c.observeCached(r)
		if !r.IsCacheHit() {
			misses++
			first = cmp.Or(first, r.Error())
		}
	}
	// Only the misses went to Redis, in one round trip.
	if misses > 0 {
		c.roundTrip(start)
	}
	if t.on() && misses > 0 {
		t.end(ctx, misses, first)
	}
	return rs
}

// Nodes wraps each node's client too: scripts are loaded per node.
func (c *instrumented) Nodes() map[string]rueidis.Client {
	nodes := c.Client.Nodes()
	out := make(map[string]rueidis.Client, len(nodes))
	for addr, n := range nodes {
		out[addr] = &instrumented{Client: n, h: c.h}
	}
	return out
}

// start is when a call began, if its duration is wanted.
func (c *instrumented) start() time.Time {
	if c.h.OnRoundTrip == nil {
		return time.Time{}
	}
	return time.Now()
}

// roundTrip reports a call that went to Redis and began at start.
func (c *instrumented) roundTrip(start time.Time) {
	if c.h.OnRoundTrip != nil {
		c.h.OnRoundTrip(time.Since(start))
	}
}

func (c *instrumented) observeCached(r rueidis.RedisResult) {
	err := r.Error()
	if err != nil && !rueidis.IsRedisNil(err) {
		c.observe(err)
		return
	}
	if c.h.OnCache != nil {
		c.h.OnCache(r.IsCacheHit())
	}
}

func (c *instrumented) observe(err error) {
	if c.h.OnError == nil {
		return
	}
	if kind := errorKind(err); kind != "" {
		c.h.OnError(kind)
	}
}

// errorKind classifies err; "" means it is not a Redis failure.
func errorKind(err error) string {
	if err == nil || rueidis.IsRedisNil(err) || errors.Is(err, context.Canceled) {
		return ""
	}
	if re, ok := rueidis.IsRedisErr(err); ok {
		if re.IsNoScript() {
			return ""
		}
		return ErrorServer
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return ErrorTimeout
	}
	return ErrorNetwork
}
