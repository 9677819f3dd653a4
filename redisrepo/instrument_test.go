package redisrepo_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// counts is what the Instrument hooks saw.
type counts struct {
	mu     sync.Mutex
	errors map[string]int
	hits   int
	misses int
	trips  int // OnRoundTrip calls
}

func (c *counts) hooks() redisrepo.Hooks {
	return redisrepo.Hooks{
		OnError: func(kind string) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.errors[kind]++
		},
		OnRoundTrip: func(d time.Duration) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if d > 0 {
				c.trips++
			}
		},
		OnCache: func(hit bool) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if hit {
				c.hits++
			} else {
				c.misses++
			}
		},
	}
}

func (c *counts) snapshot() (errs map[string]int, hits, misses int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs = make(map[string]int, len(c.errors))
	for k, v := range c.errors {
		errs[k] = v
	}
	return errs, c.hits, c.misses
}

func (c *counts) roundTrips() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trips
}

func TestInstrumentCountsCacheHits(t *testing.T) {
	srv := redistest.Start(t)
	cnt := &counts{errors: map[string]int{}}
	client := redisrepo.Instrument(srv.Client(t), cnt.hooks())
	store := redisrepo.NewProfileStore(client, redisrepo.ProfileOptions{})
	ctx := context.Background()
	uid := uuid.New()
	p := &profile.Profile{Basic: profile.Basic{ID: uid, FirstName: "Zoë", Email: "z@example.com", Created: time.Now()},
		Orders: []profile.Order{{ID: "o1", Number: "N1", Date: time.Now(), Total: 1, Currency: "EUR"}}}
	if err := store.Save(ctx, p, ""); err != nil {
		t.Fatal(err)
	}
	q := profile.Query{Basic: true, Orders: &profile.Page{Limit: 10}}

	if _, err := store.Read(ctx, uid, q); err != nil {
		t.Fatal(err)
	}
	_, hits0, misses0 := cnt.snapshot()
	if misses0 == 0 {
		t.Fatalf("first read: misses=%d, want some (nothing cached yet)", misses0)
	}
	trips0 := cnt.roundTrips()
	if trips0 == 0 {
		t.Fatal("no round trip seen for the save and the first read")
	}
	for range 5 {
		if _, err := store.Read(ctx, uid, q); err != nil {
			t.Fatal(err)
		}
	}
	errs, hits, misses := cnt.snapshot()
	// Each repeated read is meta + basic + order ids + one order, all local.
	if got, want := hits-hits0, 5*4; got < want {
		t.Errorf("hits rose by %d over 5 repeated reads, want at least %d", got, want)
	}
	if misses != misses0 {
		t.Errorf("misses rose from %d to %d on repeated reads, want no new miss", misses0, misses)
	}
	if got := cnt.roundTrips(); got != trips0 {
		t.Errorf("round trips rose from %d to %d on repeated cached reads, want none", trips0, got)
	}
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if got := cnt.roundTrips(); got != trips0+1 {
		t.Errorf("a PING: round trips %d, want %d", got, trips0+1)
	}
	if len(errs) != 0 {
		t.Errorf("errors=%v, want none", errs)
	}
}

func TestInstrumentCountsErrors(t *testing.T) {
	srv := redistest.Start(t)
	cnt := &counts{errors: map[string]int{}}
	client := redisrepo.Instrument(srv.Client(t), cnt.hooks())
	ctx := context.Background()
	b := client.B()

	// Not errors: a nil reply, a missing script (rueidis falls back to EVAL).
	if err := client.Do(ctx, b.Get().Key("missing").Build()).Error(); !rueidis.IsRedisNil(err) {
		t.Fatalf("GET missing: err=%v, want nil reply", err)
	}
	script := rueidis.NewLuaScript("return 1")
	if err := script.Exec(ctx, client, nil, nil).Error(); err != nil {
		t.Fatalf("script: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_ = client.Do(cancelled, b.Get().Key("k").Build()).Error()
	if errs, _, _ := cnt.snapshot(); len(errs) != 0 {
		t.Fatalf("errors=%v after nil reply, NOSCRIPT fallback and cancel, want none", errs)
	}

	// A server error reply.
	if err := client.Do(ctx, b.Set().Key("str").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := client.Do(ctx, b.Hset().Key("str").FieldValue().FieldValue("f", "v").Build()).Error(); err == nil {
		t.Fatal("HSET on a string: no error")
	}
	// The same through a cached read.
	if err := client.DoCache(ctx, b.Hgetall().Key("str").Cache(), time.Minute).Error(); err == nil {
		t.Fatal("HGETALL on a string: no error")
	}
	// A timeout, as WithTimeout imposes it.
	bounded := redisrepo.Instrument(redisrepo.WithTimeout(srv.Client(t), 50*time.Millisecond), cnt.hooks())
	if err := bounded.Do(ctx, bounded.B().Blpop().Key("never").Timeout(5).Build()).Error(); err == nil {
		t.Fatal("BLPOP past the timeout: no error")
	}
	errs, _, _ := cnt.snapshot()
	if errs[redisrepo.ErrorServer] != 2 || errs[redisrepo.ErrorTimeout] != 1 || len(errs) != 2 {
		t.Fatalf("errors=%v, want server:2 timeout:1", errs)
	}

	// A dead server.
	srv.Stop()
	down := redisrepo.Instrument(redisrepo.WithTimeout(client, time.Second), cnt.hooks())
	if err := down.Do(ctx, down.B().Set().Key("k").Value("v").Build()).Error(); err == nil {
		t.Fatal("SET on a stopped server: no error")
	}
	errs, _, _ = cnt.snapshot()
	if errs[redisrepo.ErrorNetwork]+errs[redisrepo.ErrorTimeout] < 2 || errs[redisrepo.ErrorServer] != 2 {
		t.Fatalf("errors=%v after the server stopped, want one more network or timeout error", errs)
	}
}

func TestInstrumentWithoutHooksIsTheClient(t *testing.T) {
	c := redistest.Start(t).Client(t)
	if got := redisrepo.Instrument(c, redisrepo.Hooks{}); got != c {
		t.Fatal("Instrument with no hooks wrapped the client")
	}
}
