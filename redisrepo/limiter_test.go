package redisrepo_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// The GCRA limiter, on a real redis-server and a real cluster. No test
// asserts how long anything took: they count decisions, and compare the
// waits Redis reports with the emission interval and with each other.

func newLimiter(t testing.TB, c rueidis.Client, name string, rate float64, burst int) *redisrepo.Limiter {
	t.Helper()
	l, err := redisrepo.NewLimiter(c, redisrepo.LimiterOptions{Name: name, Rate: rate, Burst: burst})
	if err != nil {
		t.Fatalf("NewLimiter: %v", err)
	}
	return l
}

func allow(t testing.TB, l *redisrepo.Limiter, key string) (bool, time.Duration) {
	t.Helper()
	ok, wait, err := l.Allow(context.Background(), key)
	if err != nil {
		t.Fatalf("Allow(%q): %v", key, err)
	}
	if ok && wait != 0 {
		t.Fatalf("Allow(%q) = allowed with a wait of %v", key, wait)
	}
	return ok, wait
}

func TestLimiterBurstThenRefusal(t *testing.T) { onTargets(t, testLimiterBurstThenRefusal) }

// A fresh budget allows exactly Burst attempts; then it refuses, and its
// wait is at most one interval and never grows while refusals go on
// (a refusal takes nothing). Other keys and other limiters are untouched.
func testLimiterBurstThenRefusal(t *testing.T, e env) {
	const burst = 4
	const interval = 1000 * time.Second // rate 0.001/s: no refill during the test
	l := newLimiter(t, e.client, "a", 0.001, burst)
	key := "198.51.100.7"
	for i := range burst {
		if ok, _ := allow(t, l, key); !ok {
			t.Fatalf("attempt %d of a burst of %d refused", i+1, burst)
		}
	}
	last := interval
	for i := range 20 {
		ok, wait := allow(t, l, key)
		if ok {
			t.Fatalf("attempt %d over the burst allowed", burst+i+1)
		}
		if wait <= 0 || wait > last {
			t.Fatalf("refusal %d: wait %v, want in (0, %v]", i+1, wait, last)
		}
		last = wait
	}
	if ok, _ := allow(t, l, "198.51.100.8"); !ok {
		t.Error("another key is refused")
	}
	if ok, _ := allow(t, newLimiter(t, e.client, "e", 0.001, burst), key); !ok {
		t.Error("the same key of another limiter is refused")
	}

	// What Redis holds: one key for the budget, under the prefix, in its
	// own hash tag, expiring when the budget would be whole again.
	k := "pc:rl:{a:" + key + "}"
	tat, err := strconv.ParseInt(e.str(t, "GET", k), 10, 64)
	if err != nil || tat <= 0 {
		t.Fatalf("GET %s = %d, %v: want a TAT in unix microseconds", k, tat, err)
	}
	if pttl := e.int(t, "PTTL", k); pttl <= (burst-1)*interval.Milliseconds() || pttl > burst*interval.Milliseconds() {
		t.Errorf("PTTL %s = %d ms, want about %d", k, pttl, burst*interval.Milliseconds())
	}
}

func TestLimiterRecovers(t *testing.T) { onTargets(t, testLimiterRecovers) }

// A spent budget allows one more attempt once the wait it named has passed.
func testLimiterRecovers(t *testing.T, e env) {
	l := newLimiter(t, e.client, "a", 20, 2) // one attempt back every 50ms
	key := "203.0.113.1"
	allowed := 0
	for range 5 {
		if ok, _ := allow(t, l, key); ok {
			allowed++
		}
	}
	// 5 calls take some time: a refill may come in between.
	if allowed < 2 {
		t.Fatalf("allowed %d of 5 at a burst of 2, want at least 2", allowed)
	}
	for round := range 3 {
		var wait time.Duration
		for {
			ok, w := allow(t, l, key)
			if !ok {
				wait = w
				break
			}
		}
		if wait > 50*time.Millisecond {
			t.Fatalf("round %d: wait %v, want at most one interval (50ms)", round, wait)
		}
		time.Sleep(wait)
		if ok, w := allow(t, l, key); !ok {
			t.Fatalf("round %d: refused again (wait %v) after waiting the %v it named", round, w, wait)
		}
	}
}

func TestLimiterSharedByInstances(t *testing.T) { onTargets(t, testLimiterSharedByInstances) }

// Two instances (own clients, own Limiters) on one Redis draw from one
// budget: however the attempts are spread and however concurrent, exactly
// Burst are allowed.
func testLimiterSharedByInstances(t *testing.T, e env) {
	const burst = 10
	limiters := []*redisrepo.Limiter{
		newLimiter(t, e.srv.Client(t), "a", 0.001, burst),
		newLimiter(t, e.srv.Client(t), "a", 0.001, burst),
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			if ok, _ := allow(t, limiters[i%2], "2001:db8:1:2::/64"); ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != burst {
		t.Fatalf("allowed %d of 60 concurrent attempts over two instances, want exactly %d", got, burst)
	}
}

func TestLimiterRefund(t *testing.T) { onTargets(t, testLimiterRefund) }

// Refund gives one attempt back, and never makes a budget more than whole.
func testLimiterRefund(t *testing.T, e env) {
	ctx := context.Background()
	l := newLimiter(t, e.client, "e", 0.001, 3)
	count := func(key string) (n int) {
		for range 10 {
			if ok, _ := allow(t, l, key); ok {
				n++
			}
		}
		return n
	}
	if got := count("k1"); got != 3 {
		t.Fatalf("allowed %d, want 3", got)
	}
	for range 2 {
		if err := l.Refund(ctx, "k1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := count("k1"); got != 2 {
		t.Fatalf("after two refunds: allowed %d, want 2", got)
	}
	// A whole budget: refunds change nothing, and leave no key.
	for range 5 {
		if err := l.Refund(ctx, "k2"); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.int(t, "EXISTS", "pc:rl:{e:k2}"); got != 0 {
		t.Fatalf("a refund of a whole budget left a key")
	}
	if got := count("k2"); got != 3 {
		t.Fatalf("after refunds of a whole budget: allowed %d, want 3", got)
	}
	// Take one, give it back: the key goes, as the budget is whole.
	if ok, _ := allow(t, l, "k3"); !ok {
		t.Fatal("refused")
	}
	if err := l.Refund(ctx, "k3"); err != nil {
		t.Fatal(err)
	}
	if got := e.int(t, "EXISTS", "pc:rl:{e:k3}"); got != 0 {
		t.Fatalf("a budget made whole by a refund still has its key")
	}
}

// Bad options are errors at construction; a bad key is an error, not a
// panic or a key outside its hash tag; a Redis that does not answer is
// profile.ErrUnavailable.
func TestLimiterErrors(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	for _, o := range []redisrepo.LimiterOptions{
		{Rate: 1, Burst: 1},
		{Name: "a{b", Rate: 1, Burst: 1},
		{Name: "a", Prefix: "p{", Rate: 1, Burst: 1},
		{Name: "a", Rate: 0, Burst: 1},
		{Name: "a", Rate: -1, Burst: 1},
		{Name: "a", Rate: 1e7, Burst: 1},
		{Name: "a", Rate: 1e-9, Burst: 1},
		{Name: "a", Rate: 1, Burst: 0},
	} {
		if _, err := redisrepo.NewLimiter(c, o); err == nil {
			t.Errorf("NewLimiter(%+v) = nil error", o)
		}
	}
	l := newLimiter(t, c, "a", 1, 1)
	for _, key := range []string{"", "x}y", "{u:" + uuid.NewString() + "}"} {
		if _, _, err := l.Allow(context.Background(), key); err == nil {
			t.Errorf("Allow(%q) = nil error", key)
		}
	}
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, _, err := l.Allow(ctx, "k"); !errors.Is(err, profile.ErrUnavailable) {
		t.Errorf("Allow with Redis down: %v, want ErrUnavailable", err)
	}
	if err := l.Refund(ctx, "k"); !errors.Is(err, profile.ErrUnavailable) {
		t.Errorf("Refund with Redis down: %v, want ErrUnavailable", err)
	}
}

// The zero-setup embedded Redis (miniredis, gopher-lua) runs the same
// script: a smoke test, not a proof.
func TestLimiterOnEmbeddedRedis(t *testing.T) {
	c, stop, err := redisrepo.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	l := newLimiter(t, c, "a", 0.001, 3)
	var got []bool
	for range 5 {
		ok, _ := allow(t, l, "127.0.0.1")
		got = append(got, ok)
	}
	if fmt.Sprint(got) != "[true true true false false]" {
		t.Fatalf("decisions %v, want 3 allowed then refused", got)
	}
	if err := l.Refund(context.Background(), "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := allow(t, l, "127.0.0.1"); !ok {
		t.Fatal("refused after a refund")
	}
}
