package redisrepo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/redisrepo"
)

// returns runs f and fails t unless it returns within a generous bound: a
// sanity check that a call ends at all, not a latency target.
func returns(t *testing.T, what string, f func() error) error {
	t.Helper()
	const bound = 20 * time.Second
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		t.Fatalf("%s: still waiting after %v", what, bound)
		return nil
	}
}

func TestWithTimeoutOnAFrozenServer(t *testing.T) {
	srv := redistest.Start(t)
	// The plain client's own timeouts are minutes away: only the wrapper
	// can end the calls below.
	plain := srv.Client(t, func(o *rueidis.ClientOption) { o.ConnWriteTimeout = time.Hour })
	c := redisrepo.WithTimeout(plain, 100*time.Millisecond)
	ctx := context.Background()
	if err := c.Do(ctx, c.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.DoCache(ctx, c.B().Get().Key("k").Cache(), time.Minute).ToString(); err != nil || v != "v" {
		t.Fatalf("DoCache = %q, %v", v, err)
	}
	if !c.DoCache(ctx, c.B().Get().Key("k").Cache(), time.Minute).IsCacheHit() {
		t.Error("second DoCache through the wrapper missed the client-side cache")
	}

	srv.Pause(t)
	calls := []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"Do", func(ctx context.Context) error { return c.Do(ctx, c.B().Get().Key("x").Build()).Error() }},
		{"DoMulti", func(ctx context.Context) error {
			return c.DoMulti(ctx, c.B().Get().Key("x").Build(), c.B().Get().Key("y").Build())[0].Error()
		}},
		{"DoCache", func(ctx context.Context) error {
			return c.DoCache(ctx, c.B().Get().Key("x").Cache(), time.Minute).Error()
		}},
		{"DoMultiCache", func(ctx context.Context) error {
			return c.DoMultiCache(ctx, rueidis.CT(c.B().Get().Key("x").Cache(), time.Minute))[0].Error()
		}},
		{"Nodes", func(ctx context.Context) error {
			for _, n := range c.Nodes() {
				return n.Do(ctx, n.B().Ping().Build()).Error()
			}
			return errors.New("no nodes")
		}},
		{"Lua", func(ctx context.Context) error {
			return rueidis.NewLuaScript("return 1").Exec(ctx, c, nil, nil).Error()
		}},
	}
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			for _, ctx := range []struct {
				name string
				ctx  func() (context.Context, context.CancelFunc)
			}{
				{"no deadline", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
				{"later deadline", func() (context.Context, context.CancelFunc) {
					return context.WithTimeout(context.Background(), time.Hour)
				}},
			} {
				cctx, cancel := ctx.ctx()
				err := returns(t, ctx.name, func() error { return call.do(cctx) })
				cancel()
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s: err = %v, want context.DeadlineExceeded", ctx.name, err)
				}
			}
		})
	}

	// An earlier deadline is kept, not stretched to the timeout: here the
	// timeout is an hour, so only the caller's 50 ms can end the call.
	long := redisrepo.WithTimeout(plain, time.Hour)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := returns(t, "earlier deadline", func() error { return long.Do(short, long.B().Get().Key("x").Build()).Error() })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("earlier deadline: err = %v, want context.DeadlineExceeded", err)
	}

	// Thawed, the same client works again.
	srv.Resume(t)
	if err := returns(t, "after resume", func() error { return c.Do(ctx, c.B().Ping().Build()).Error() }); err != nil {
		t.Errorf("PING after resume: %v", err)
	}
}

func TestWithTimeoutPassThrough(t *testing.T) {
	c := redistest.Start(t).Client(t)
	if got := redisrepo.WithTimeout(c, 0); got != c {
		t.Error("WithTimeout(c, 0) wrapped c, want c unchanged")
	}
	w := redisrepo.WithTimeout(c, time.Second)
	if got := redisrepo.WithTimeout(w, 2*time.Second); got == w {
		t.Error("re-wrapping returned the old wrapper, want the new timeout")
	}
	if w.Mode() != c.Mode() {
		t.Errorf("Mode = %s, want %s", w.Mode(), c.Mode())
	}
}
