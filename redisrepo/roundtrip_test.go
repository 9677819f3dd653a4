package redisrepo_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// tripCounter counts the round trips a client makes: each Do and each
// DoMulti is one; cached reads count only when they miss.
type tripCounter struct {
	rueidis.Client
	mu    sync.Mutex
	trips [][]string // the first command of each round trip, and how many it held
}

func (c *tripCounter) note(first []string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trips = append(c.trips, append([]string{first[0]}, make([]string, n-1)...))
}

// Commands are read before the call: rueidis recycles a command once sent.

func (c *tripCounter) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.note(cmd.Commands(), 1)
	return c.Client.Do(ctx, cmd)
}

func (c *tripCounter) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	c.note(cmds[0].Commands(), len(cmds))
	return c.Client.DoMulti(ctx, cmds...)
}

func (c *tripCounter) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	name := cmd.Commands()[0]
	r := c.Client.DoCache(ctx, cmd, ttl)
	if !r.IsCacheHit() {
		c.note([]string{name}, 1)
	}
	return r
}

func (c *tripCounter) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	names := make([]string, len(multi))
	for i, m := range multi {
		names[i] = m.Cmd.Commands()[0]
	}
	rs := c.Client.DoMultiCache(ctx, multi...)
	missed := 0
	for _, r := range rs {
		if !r.IsCacheHit() {
			missed++
		}
	}
	if missed > 0 { // one pipelined batch for all the misses
		c.note(names, missed)
	}
	return rs
}

func (c *tripCounter) take() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.trips
	c.trips = nil
	return t
}

// All of a user's profile writes are one pipelined round trip, however big
// the profile (issue 3): one MULTI … EXEC, replacing the previous
// generation too. And a hot read makes none.
func TestWritesAndHotReadsRoundTrips(t *testing.T) { onTargets(t, testWritesAndHotReadsRoundTrips) }

func testWritesAndHotReadsRoundTrips(t *testing.T, e env) {
	c := &tripCounter{Client: e.client}
	s := newProfileStore(c, redisrepo.ProfileOptions{})
	ctx := context.Background()
	uid := uuid.New()
	for _, p := range []*profile.Profile{carol(uid, 2000), carol(uid, 2000)} { // a first save, then a replace
		if err := s.Save(ctx, p, ""); err != nil {
			t.Fatal(err)
		}
		trips := c.take()
		if len(trips) != 1 || trips[0][0] != "MULTI" || len(trips[0]) < 4000 {
			t.Fatalf("Save made %d round trips (first commands %v), want 1 MULTI … EXEC with every write", len(trips), firsts(trips))
		}
	}

	q := profile.Query{Basic: true, Interests: true, Orders: &profile.Page{Offset: 1000, Limit: 20}}
	for range 2 { // warm the client-side cache
		if _, err := s.Read(ctx, uid, q); err != nil {
			t.Fatal(err)
		}
	}
	c.take()
	if _, err := s.Read(ctx, uid, q); err != nil {
		t.Fatal(err)
	}
	if trips := c.take(); len(trips) != 0 {
		t.Errorf("a hot Read made %d round trips (%v), want 0", len(trips), firsts(trips))
	}

	ts := redisrepo.NewTokenStore(c, redisrepo.TokenOptions{})
	sess := profile.Session{ID: "s1", UserID: uid}
	if err := ts.Create(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	if trips := c.take(); len(trips) != 1 || trips[0][0] != "MULTI" {
		t.Errorf("Create made %d round trips (%v), want 1 MULTI … EXEC", len(trips), firsts(trips))
	}
	for range 2 {
		if _, err := ts.Lookup(ctx, uid, "s1"); err != nil {
			t.Fatal(err)
		}
	}
	c.take()
	if _, err := ts.Lookup(ctx, uid, "s1"); err != nil {
		t.Fatal(err)
	}
	if trips := c.take(); len(trips) != 0 {
		t.Errorf("a hot Lookup made %d round trips (%v), want 0", len(trips), firsts(trips))
	}
}

func firsts(trips [][]string) []string {
	out := make([]string, len(trips))
	for i, t := range trips {
		out[i] = t[0]
	}
	return out
}
