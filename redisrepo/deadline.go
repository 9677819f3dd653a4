package redisrepo

import (
	"context"
	"sync/atomic"
	"time"
)

// withLazyDeadline is context.WithDeadline, except that the timer starts
// (and the context registers with its parent) only when someone calls
// Done. A read that the client-side cache answers never does: rueidis
// returns a cache hit before it looks at the context. Its synchronous
// path only asks for Deadline, to set socket deadlines. So a hot read
// costs one small allocation, not a timer and a parent registration:
// context.WithTimeout per call was 14 % of the CPU of a hot request
// (BenchmarkRequest in cmd/profilecache).
//
// Its release must be called, as a context.WithDeadline's cancel. It is a
// method rather than a returned CancelFunc so that a call does not allocate
// a closure for it. context.Cause of a lazy context whose deadline passed
// while nobody waited on Done is its parent's cause; Err says
// DeadlineExceeded all the same.
func withLazyDeadline(parent context.Context, deadline time.Time) *lazyDeadline {
	return &lazyDeadline{parent: parent, deadline: deadline}
}

type lazyDeadline struct {
	parent   context.Context
	deadline time.Time
	real     atomic.Pointer[boundCtx] // nil until Done or release
}

// boundCtx is the real deadline context, built on first demand.
type boundCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// released marks a lazyDeadline cancelled before anyone waited on it.
var released = &boundCtx{cancel: func() {}}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (c *lazyDeadline) bound() *boundCtx {
	if b := c.real.Load(); b != nil {
		return b
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	b := &boundCtx{ctx: ctx, cancel: cancel}
	if !c.real.CompareAndSwap(nil, b) {
		cancel() // another goroutine won, or release came first
		return c.real.Load()
	}
	return b
}

func (c *lazyDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *lazyDeadline) Done() <-chan struct{} {
	b := c.bound()
	if b == released {
		return closedChan
	}
	return b.ctx.Done()
}

func (c *lazyDeadline) Err() error {
	switch b := c.real.Load(); {
	case b == released:
		return context.Canceled
	case b != nil:
		return b.ctx.Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *lazyDeadline) Value(key any) any {
	if b := c.real.Load(); b != nil && b != released {
		return b.ctx.Value(key) // so that context.Cause sees our cancellation
	}
	return c.parent.Value(key)
}

func (c *lazyDeadline) String() string { return "redisrepo.lazyDeadline" }

// release is the context's cancel. A nil c is a no-op, for callers whose
// context already had a nearer deadline.
func (c *lazyDeadline) release() {
	if c == nil {
		return
	}
	if c.real.CompareAndSwap(nil, released) {
		return
	}
	c.real.Load().cancel()
}
