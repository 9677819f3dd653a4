package redisrepo_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

func TestLoaded(t *testing.T) { onTargets(t, testLoaded) }

// Loaded is when the profile was saved: the refresh cooldown measures its
// age by it on every instance. Renewals by reads do not change it; a meta
// written before it was recorded (or holding garbage) reads as "unknown",
// and its profile still reads fine.
func testLoaded(t *testing.T, e env) {
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setClock := func(t time.Time) { mu.Lock(); defer mu.Unlock(); now = t }
	s := newProfileStore(e.client, redisrepo.ProfileOptions{TTL: time.Minute, Now: clock, Logger: slog.New(&logRecorder{})})
	other := newProfileStore(e.srv.Client(t), redisrepo.ProfileOptions{Logger: slog.New(&logRecorder{})}) // another instance
	ctx := context.Background()
	uid := uuid.New()
	loaded := func(s *redisrepo.ProfileStore) time.Time {
		t.Helper()
		at, err := s.Loaded(ctx, uid)
		if err != nil {
			t.Fatalf("Loaded: %v", err)
		}
		return at
	}

	if got := loaded(s); !got.IsZero() {
		t.Fatalf("Loaded without a profile = %v, want zero", got)
	}
	mustSave(t, s, alice(uid))
	if got := loaded(other); !got.Equal(t0) {
		t.Fatalf("Loaded on another instance after Save = %v, want %v", got, t0)
	}
	// A read after TTL/2 renews the TTLs; the profile is no younger.
	setClock(t0.Add(40 * time.Second))
	if _, err := s.Read(ctx, uid, profile.Query{Basic: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the read renews", func() bool {
		return e.str(t, "HGET", key(uid, "meta"), "renewed") != e.str(t, "HGET", key(uid, "meta"), "loaded")
	})
	if got := loaded(s); !got.Equal(t0) {
		t.Fatalf("Loaded after a renewal = %v, want %v", got, t0)
	}
	setClock(t0.Add(time.Hour))
	mustSave(t, s, alice(uid))
	if got := loaded(other); !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Loaded after a second Save = %v, want %v", got, t0.Add(time.Hour))
	}

	for _, tt := range []struct {
		name  string
		setup []string
	}{
		{"LegacyMeta", []string{"HDEL", key(uid, "meta"), "loaded"}},
		{"Garbage", []string{"HSET", key(uid, "meta"), "loaded", "soon"}},
		{"Negative", []string{"HSET", key(uid, "meta"), "loaded", "-5"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mustSave(t, s, alice(uid))
			e.do(t, tt.setup...)
			if got := loaded(other); !got.IsZero() {
				t.Errorf("Loaded = %v, want zero (old)", got)
			}
			if tt.name != "LegacyMeta" {
				return
			}
			// Decoding stays backward compatible: a fresh reader of a
			// meta without the field reads the profile.
			fresh := newProfileStore(e.srv.Client(t), redisrepo.ProfileOptions{})
			v, err := fresh.Read(ctx, uid, profile.Query{Basic: true, Orders: page(0, 5)})
			if err != nil || v.Orders.Total != 25 {
				t.Fatalf("Read of a legacy meta: total %d, %v", v.Orders.Total, err)
			}
		})
	}

	if err := s.Delete(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if got := loaded(other); !got.IsZero() {
		t.Fatalf("Loaded after Delete = %v, want zero", got)
	}
}
