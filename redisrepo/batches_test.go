package redisrepo_test

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// No call that the profile store sends grows with the profile (issue 11):
// every round trip of a save, a replace, a cold read, a renewal, a fenced
// save, a delete and an erasure of a carol-sized profile stays within the
// batch bounds. What Redis does inside each call is bounded by what the
// call carries (checkBounded), so this is what keeps Redis from stalling
// everyone else; the benchmark (make stalls) measures the stalls.
func TestEveryCallIsBounded(t *testing.T) { onTargets(t, testEveryCallIsBounded) }

func testEveryCallIsBounded(t *testing.T, e env) {
	ctx := context.Background()
	c := &tripCounter{Client: e.client}
	const ttl = time.Hour
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newProfileStore(c, redisrepo.ProfileOptions{TTL: ttl, Now: clock})
	tokens := redisrepo.NewTokenStore(c, redisrepo.TokenOptions{FenceTTL: time.Minute})
	uid := uuid.New()
	p := carol(uid, 3000)
	q := profile.Query{Basic: true, Interests: true, Orders: page(2900, 100), Invoices: page(100, 20)}

	steps := []struct {
		name string
		run  func(t *testing.T)
		// want is a command that the step must have sent in a full batch,
		// so that the bound is met by batching, not by skipping the work.
		want string
	}{
		{"first save", func(t *testing.T) { mustSave(t, s, p) }, "EVALSHA"},
		{"replace", func(t *testing.T) { mustSave(t, s, p) }, "UNLINK"},
		{"cold read", func(t *testing.T) {
			cc := &tripCounter{Client: e.srv.Client(t)} // an empty client-side cache
			cold := newProfileStore(cc, redisrepo.ProfileOptions{TTL: ttl, Now: clock})
			if v, err := cold.Read(ctx, uid, q); err != nil || len(v.Orders.Items) != 100 {
				t.Fatalf("Read = %d orders, %v", len(v.Orders.Items), err)
			}
			trips := cc.take()
			if len(trips) == 0 {
				t.Fatal("a cold read made no round trip")
			}
			checkBounded(t, "cold read", trips)
		}, ""},
		{"renewal", func(t *testing.T) {
			last := key(uid, e.gen(t, uid), "order", p.Orders[2999].ID)
			e.do(t, "PEXPIRE", last, "5000")
			mu.Lock()
			now = t0.Add(ttl)
			mu.Unlock()
			if _, err := s.Read(ctx, uid, q); err != nil {
				t.Fatal(err)
			}
			if got := e.int(t, "PTTL", last); got <= 5000 {
				t.Errorf("the last order's PTTL after the renewal = %d ms, want it renewed to about %d", got, ttl.Milliseconds())
			}
		}, "EVAL"},
		{"fenced save", func(t *testing.T) {
			if _, err := tokens.RevokeAll(ctx, uid); err != nil {
				t.Fatal(err)
			}
			if err := s.Save(ctx, p, ""); !errors.Is(err, profile.ErrFenced) {
				t.Fatalf("Save = %v, want ErrFenced", err)
			}
		}, ""},
		{"delete", func(t *testing.T) {
			if err := s.Delete(ctx, uid); err != nil {
				t.Fatal(err)
			}
		}, "UNLINK"},
		{"erase", func(t *testing.T) {
			fence, err := s.Fence(ctx, uid)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Save(ctx, p, fence); err != nil {
				t.Fatal(err)
			}
			c.take()
			if err := tokens.Erase(ctx, uid); err != nil {
				t.Fatal(err)
			}
			if keys := e.userKeys(t, uid); !slices.Equal(keys, []string{key(uid, "fence")}) {
				t.Errorf("after Erase: %d keys, want only the fence", len(keys))
			}
		}, "UNLINK"},
	}
	for _, st := range steps {
		c.take()
		st.run(t)
		trips := c.take()
		checkBounded(t, st.name, trips)
		if st.want != "" && !slices.ContainsFunc(trips, func(tr trip) bool { return fullBatch(tr, st.want) }) {
			t.Errorf("%s: no full batch of %s among %d round trips (%v)", st.name, st.want, len(trips), firsts(trips))
		}
	}
}

// fullBatch says whether tr carries BatchKeys keys of command name: one
// command on that many keys, or that many commands.
func fullBatch(tr trip, name string) bool {
	if len(tr) == redisrepo.BatchKeys && tr[0][0] == name {
		return true
	}
	for _, cmd := range tr {
		if n, _ := cmdSize(cmd); cmd[0] == name && n >= redisrepo.BatchKeys {
			return true
		}
	}
	return false
}

// batchHook lets a test act before each write batch of a save: k counts
// the batches from 0. Once dead, every call fails as if Redis, or this
// instance's connection to it, had gone away.
type batchHook struct {
	rueidis.Client
	before func(ctx context.Context, k int)
	mu     sync.Mutex
	n      int
	dead   bool
}

var errGone = errors.New("connection reset by test")

func (c *batchHook) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if scriptKeys(cmd.Commands()) == "write" {
		c.mu.Lock()
		k := c.n
		c.n++
		c.mu.Unlock()
		c.before(ctx, k)
	}
	if c.isDead() {
		return rueidis.NewErrorResult(errGone)
	}
	return c.Client.Do(ctx, cmd)
}

func (c *batchHook) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	if c.isDead() {
		rs := make([]rueidis.RedisResult, len(cmds))
		for i := range rs {
			rs[i] = rueidis.NewErrorResult(errGone)
		}
		return rs
	}
	return c.Client.DoMulti(ctx, cmds...)
}

func (c *batchHook) die() { c.mu.Lock(); c.dead = true; c.mu.Unlock() }

func (c *batchHook) isDead() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.dead }

// A save that fails between batches leaves the current profile as it was,
// and of the new generation only keys that expire by themselves: none if
// Redis can still be told to delete them, else keys with their TTL.
func TestSaveDiesHalfway(t *testing.T) { onTargets(t, testSaveDiesHalfway) }

func testSaveDiesHalfway(t *testing.T, e env) {
	const ttl = time.Hour
	tests := []struct {
		name string
		// fail makes batch 3 fail: cancel is the save's own context.
		fail func(c *batchHook, cancel context.CancelFunc)
		// leftover: some keys of the new generation stay (with a TTL).
		leftover bool
	}{
		{name: "the caller gives up", fail: func(_ *batchHook, cancel context.CancelFunc) { cancel() }},
		{name: "Redis goes away", leftover: true, fail: func(c *batchHook, _ context.CancelFunc) { c.die() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid := uuid.New()
			old, p := alice(uid), carol(uid, 2000)
			q := profile.Query{Basic: true, Orders: page(20, 5)}
			mustSave(t, newProfileStore(e.client, redisrepo.ProfileOptions{TTL: ttl}), old)
			before := e.userKeys(t, uid)
			oldGen := e.gen(t, uid)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hook := &batchHook{Client: e.client}
			hook.before = func(_ context.Context, k int) {
				if k == 3 {
					tt.fail(hook, cancel)
				}
			}
			logs := &logRecorder{}
			s := newProfileStore(hook, redisrepo.ProfileOptions{TTL: ttl, Logger: slog.New(logs)})
			if err := s.Save(ctx, p, ""); err == nil {
				t.Fatal("Save succeeded, want an error")
			}
			if hook.n < 4 {
				t.Fatalf("the save sent %d batches, want at least 4", hook.n)
			}

			if got := e.gen(t, uid); got != oldGen {
				t.Errorf("meta points at %q after the failed save, want the old %q", got, oldGen)
			}
			v, err := newProfileStore(e.srv.Client(t), redisrepo.ProfileOptions{}).Read(context.Background(), uid, q)
			if err != nil || !reflect.DeepEqual(v, viewOf(old, q)) {
				t.Errorf("Read after the failed save = %s, %v; want the old profile", describe(v), err)
			}
			after := e.userKeys(t, uid)
			for _, k := range after {
				if pttl := e.int(t, "PTTL", k); pttl <= 0 || pttl > ttl.Milliseconds() {
					t.Errorf("key %s has PTTL %d, want a TTL of at most %d", k, pttl, ttl.Milliseconds())
				}
			}
			slices.Sort(before)
			slices.Sort(after)
			if !tt.leftover && !slices.Equal(before, after) {
				t.Errorf("the failed save left %d keys, want the %d of the old profile", len(after), len(before))
			}
			if tt.leftover {
				if len(after) < len(before)+3*redisrepo.BatchKeys {
					t.Errorf("%d keys, want the 3 batches written before Redis went away (so that their TTLs were checked)", len(after))
				}
				if w := logs.warnings(); len(w) != 1 {
					t.Errorf("warnings %q, want one about the keys left to their TTL", w)
				}
			}
		})
	}
}

// A revocation or an erasure while a save is between batches stops it: the
// batches after it write nothing (even if the saving instance then dies,
// the erasure leaves nothing of the user), and the save fails with
// ErrFenced, leaving the current profile as it was.
func TestSaveFencedHalfway(t *testing.T) { onTargets(t, testSaveFencedHalfway) }

func testSaveFencedHalfway(t *testing.T, e env) {
	ctx := context.Background()
	tokens := redisrepo.NewTokenStore(e.srv.Client(t), redisrepo.TokenOptions{FenceTTL: time.Minute})
	tests := []struct {
		name  string
		fence func(t *testing.T, uid uuid.UUID)
		// dies: the saving instance dies right after the batch it sends
		// under the fence, so its own cleanup never runs.
		dies   bool
		erased bool
	}{
		{name: "logout-all", fence: func(t *testing.T, uid uuid.UUID) {
			if _, err := tokens.RevokeAll(ctx, uid); err != nil {
				t.Error(err)
			}
		}},
		{name: "erasure", erased: true, fence: func(t *testing.T, uid uuid.UUID) {
			if err := tokens.Erase(ctx, uid); err != nil {
				t.Error(err)
			}
		}},
		{name: "erasure, then the saver dies", erased: true, dies: true, fence: func(t *testing.T, uid uuid.UUID) {
			if err := tokens.Erase(ctx, uid); err != nil {
				t.Error(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid := uuid.New()
			mustSave(t, newProfileStore(e.client, redisrepo.ProfileOptions{}), alice(uid))
			before := e.userKeys(t, uid)
			hook := &batchHook{Client: e.client}
			hook.before = func(_ context.Context, k int) {
				switch {
				case k == 2:
					tt.fence(t, uid)
				case k == 3 && tt.dies:
					hook.die()
				}
			}
			s := newProfileStore(hook, redisrepo.ProfileOptions{Logger: slog.New(&logRecorder{})})
			err := s.Save(ctx, carol(uid, 2000), "")
			if tt.dies {
				if err == nil {
					t.Fatal("Save succeeded")
				}
			} else if !errors.Is(err, profile.ErrFenced) {
				t.Fatalf("Save = %v, want ErrFenced", err)
			}

			after := e.userKeys(t, uid)
			want := append(slices.Clone(before), key(uid, "fence"))
			if tt.erased {
				want = []string{key(uid, "fence")}
			}
			slices.Sort(after)
			slices.Sort(want)
			if !slices.Equal(after, want) {
				t.Errorf("after the fenced save: %d keys, want %d (%d before it)", len(after), len(want), len(before))
			}
		})
	}
}
