package redisrepo_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/redisrepo"
)

func TestLock(t *testing.T) { onTargets(t, testLock) }

func testLock(t *testing.T, e env) {
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	ctx := context.Background()
	uid := uuid.New()

	locked := func() bool {
		t.Helper()
		l, err := s.Locked(ctx, uid)
		if err != nil {
			t.Fatalf("Locked: %v", err)
		}
		return l
	}
	if locked() {
		t.Fatal("Locked before TryLock = true")
	}
	release, ok, err := s.TryLock(ctx, uid, time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v; want true, nil", ok, err)
	}
	if got := e.str(t, "TYPE", key(uid, "lock")); got != "string" {
		t.Errorf("TYPE lock = %q, want string", got)
	}
	if got := e.int(t, "PTTL", key(uid, "lock")); got <= 0 || got > 60000 {
		t.Errorf("PTTL lock = %d, want in (0, 60000]", got)
	}
	if _, ok, err := s.TryLock(ctx, uid, time.Minute); ok || err != nil {
		t.Fatalf("second TryLock = %v, %v; want false, nil", ok, err)
	}
	// Another user's lock is another lock.
	if rel, ok, err := s.TryLock(ctx, uuid.New(), time.Minute); !ok || err != nil {
		t.Errorf("TryLock of another user = %v, %v; want true, nil", ok, err)
	} else if err := rel(ctx); err != nil {
		t.Error(err)
	}
	if !locked() {
		t.Error("Locked while held = false")
	}
	if err := release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	if locked() {
		t.Error("Locked after release = true")
	}

	// A lock expires by itself, and its old owner cannot release the new one.
	stale, ok, err := s.TryLock(ctx, uid, 30*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	eventually(t, "the lock expires", func() bool { return !locked() })
	current, ok, err := s.TryLock(ctx, uid, time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock after expiry = %v, %v; want true, nil", ok, err)
	}
	if err := stale(ctx); err != nil {
		t.Fatalf("stale release: %v", err)
	}
	if !locked() {
		t.Error("a stale owner's release freed the new owner's lock")
	}
	if err := current(ctx); err != nil {
		t.Fatal(err)
	}
	if locked() {
		t.Error("Locked after the owner's release = true")
	}

	if _, _, err := s.TryLock(ctx, uid, 0); err == nil {
		t.Error("TryLock(ttl 0) = nil error, want one")
	}
}
