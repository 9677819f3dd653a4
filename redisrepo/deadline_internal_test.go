package redisrepo

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

func TestLazyDeadlineUnobserved(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	dl := time.Now().Add(time.Hour)
	ctx, cancel := lazyForTest(parent, dl)
	if got, ok := ctx.Deadline(); !ok || !got.Equal(dl) {
		t.Errorf("Deadline = %v, %v; want %v, true", got, ok, dl)
	}
	if err := ctx.Err(); err != nil {
		t.Errorf("Err = %v, want nil", err)
	}
	if got := ctx.Value(ctxKey{}); got != "v" {
		t.Errorf("Value = %v, want the parent's v", got)
	}
	if ctx.(*lazyDeadline).real.Load() != nil {
		t.Error("a context nobody waited on built its timer")
	}
	cancel()
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err after cancel = %v, want Canceled", err)
	}
	select {
	case <-ctx.Done():
	default:
		t.Error("Done after cancel is open, want closed")
	}
	cancel() // twice is fine
}

func TestLazyDeadlineExpires(t *testing.T) {
	ctx, cancel := lazyForTest(context.Background(), time.Now().Add(20*time.Millisecond))
	defer cancel()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed 5s after a 20ms deadline")
	}
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err = %v, want DeadlineExceeded", err)
	}
	if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Cause = %v, want DeadlineExceeded", err)
	}

	// Unobserved, the deadline still shows in Err.
	ctx2, cancel2 := lazyForTest(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel2()
	if err := ctx2.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err past an unobserved deadline = %v, want DeadlineExceeded", err)
	}
}

func TestLazyDeadlineFollowsParent(t *testing.T) {
	for _, observed := range []bool{false, true} {
		parent, cancelParent := context.WithCancel(context.Background())
		ctx, cancel := lazyForTest(parent, time.Now().Add(time.Hour))
		if observed {
			_ = ctx.Done()
		}
		cancelParent()
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("observed=%v: Done not closed after the parent was cancelled", observed)
		}
		if err := ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("observed=%v: Err = %v, want Canceled", observed, err)
		}
		cancel()
	}
}

// A child of a lazy context is cancelled with it, and concurrent waiters
// share one channel; run with -race.
func TestLazyDeadlineConcurrent(t *testing.T) {
	ctx, cancel := lazyForTest(context.Background(), time.Now().Add(time.Hour))
	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	chans := make([]<-chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range chans {
		wg.Go(func() { chans[i] = ctx.Done() })
	}
	wg.Wait()
	for i := range chans {
		if chans[i] != chans[0] {
			t.Fatal("concurrent Done calls returned different channels")
		}
	}
	cancel()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("child not cancelled with its lazy parent")
	}
}

func BenchmarkBoundContext(b *testing.B) {
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	b.Run("WithTimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(parent, time.Second)
			_, _ = ctx.Deadline()
			cancel()
		}
	})
	b.Run("lazy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := lazyForTest(parent, time.Now().Add(time.Second))
			_, _ = ctx.Deadline()
			cancel()
		}
	})
}

// lazyForTest is withLazyDeadline in context.WithDeadline's shape.
func lazyForTest(parent context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	l := withLazyDeadline(parent, deadline)
	return l, l.release
}
