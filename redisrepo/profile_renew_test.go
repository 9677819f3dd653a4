package redisrepo_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// Reads renew PROFILE_TTL on every key of the generation, but only once
// half of it has passed since the last renewal. Instead of sleeping, the
// test shortens the keys' TTLs in Redis and moves the store's clock.
func TestReadRenewsTTL(t *testing.T) { onTargets(t, testReadRenewsTTL) }

func testReadRenewsTTL(t *testing.T, e env) {
	const ttl = time.Minute
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setClock := func(t time.Time) { mu.Lock(); defer mu.Unlock(); now = t }
	logs := &logRecorder{}
	s := newProfileStore(e.client, redisrepo.ProfileOptions{TTL: ttl, Now: clock, Logger: slog.New(logs)})
	ctx := context.Background()
	uid := uuid.New()
	mustSave(t, s, richProfile(uid, "R", 300, 6, 3))
	keys := e.userKeys(t, uid)
	if len(keys) != 1+1+1+3+300+6+3 {
		t.Fatalf("%d keys, want %d", len(keys), 1+1+1+3+300+6+3)
	}
	shorten := func() {
		for _, k := range keys {
			e.do(t, "PEXPIRE", k, "5000")
		}
	}
	maxPTTL := func() (lo, hi int64) {
		lo = 1 << 62
		for _, k := range keys {
			p := e.int(t, "PTTL", k)
			lo, hi = min(lo, p), max(hi, p)
		}
		return lo, hi
	}
	q := profile.Query{Basic: true, Orders: page(0, 5)}

	shorten()
	setClock(t0.Add(ttl/2 - time.Second))
	if _, err := s.Read(ctx, uid, q); err != nil {
		t.Fatal(err)
	}
	if _, hi := maxPTTL(); hi > 5000 {
		t.Errorf("before TTL/2: a key has PTTL %d, want no renewal (<= 5000)", hi)
	}

	setClock(t0.Add(ttl/2 + time.Second))
	var wg sync.WaitGroup
	for range 8 { // concurrent readers share one renewal
		wg.Go(func() {
			if _, err := s.Read(ctx, uid, q); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if lo, hi := maxPTTL(); lo <= 5000 || hi > ttl.Milliseconds() {
		t.Errorf("after TTL/2: PTTLs in [%d, %d], want all renewed to (5000, %d]", lo, hi, ttl.Milliseconds())
	}
	if got, want := e.str(t, "HGET", key(uid, "meta"), "renewed"), fmt.Sprint(t0.Add(ttl/2+time.Second).UnixMilli()); got != want {
		t.Errorf("meta renewed = %s, want %s", got, want)
	}

	// Renewed just now: the next reads leave the TTLs alone.
	shorten()
	setClock(t0.Add(ttl/2 + 20*time.Second))
	if _, err := s.Read(ctx, uid, q); err != nil {
		t.Fatal(err)
	}
	if _, hi := maxPTTL(); hi > 5000 {
		t.Errorf("soon after a renewal: a key has PTTL %d, want no renewal", hi)
	}
	if w := logs.warnings(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
}

// A failed renewal costs only an earlier reload: it is logged, and the read
// it rode on succeeds.
func TestRenewFailureDoesNotFailRead(t *testing.T) { onTargets(t, testRenewFailureDoesNotFailRead) }

func testRenewFailureDoesNotFailRead(t *testing.T, e env) {
	logs := &logRecorder{}
	now := t0
	s := newProfileStore(e.client, redisrepo.ProfileOptions{TTL: time.Minute, Now: func() time.Time { return now },
		Logger: slog.New(logs)})
	uid := uuid.New()
	mustSave(t, s, alice(uid))
	// Break the renewal, not the read: the walk over the generation meets
	// a string where the invoice list should be.
	inv := key(uid, e.gen(t, uid), "invoices")
	e.do(t, "DEL", inv)
	e.do(t, "SET", inv, "not a list")

	now = t0.Add(time.Hour)
	if _, err := s.Read(context.Background(), uid, profile.Query{Basic: true, Orders: page(0, 5)}); err != nil {
		t.Fatalf("Read: %v", err)
	}
	w := logs.warnings()
	if len(w) != 1 || !strings.Contains(w[0], "renew") || !strings.Contains(w[0], "WRONGTYPE") {
		t.Errorf("warnings = %q, want one about the failed renewal", w)
	}
}

// NoRenew (package session, read-only): a read long past TTL/2 renews
// nothing; the same read without NoRenew does (the control).
func TestReadNoRenew(t *testing.T) {
	for _, noRenew := range []bool{true, false} {
		t.Run(fmt.Sprint("NoRenew=", noRenew), func(t *testing.T) {
			e := newEnv(t)
			const ttl = time.Minute
			now := t0
			s := newProfileStore(e.client, redisrepo.ProfileOptions{TTL: ttl, NoRenew: noRenew,
				Now: func() time.Time { return now }})
			uid := uuid.New()
			mustSave(t, s, richProfile(uid, "N", 3, 1, 1))
			keys := e.userKeys(t, uid)
			for _, k := range keys {
				e.do(t, "PEXPIRE", k, "5000")
			}
			now = t0.Add(ttl)
			if _, err := s.Read(context.Background(), uid, profile.Query{Basic: true}); err != nil {
				t.Fatal(err)
			}
			renewed := 0
			for _, k := range keys {
				if e.int(t, "PTTL", k) > 5000 {
					renewed++
				}
			}
			if want := map[bool]int{true: 0, false: len(keys)}[noRenew]; renewed != want {
				t.Errorf("%d of %d keys renewed, want %d", renewed, len(keys), want)
			}
		})
	}
}
