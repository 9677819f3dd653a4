package redisrepo_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// A save that began before every session of the user was ended writes
// nothing; one that began after, or long enough after that the fence has
// lapsed, saves as usual.
func TestSaveFenced(t *testing.T) { onTargets(t, testSaveFenced) }

func testSaveFenced(t *testing.T, e env) {
	ctx := context.Background()
	const fenceTTL = 300 * time.Millisecond
	store := newProfileStore(e.client, redisrepo.ProfileOptions{})
	tokens := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{FenceTTL: fenceTTL})

	tests := []struct {
		name string
		// before runs after the fence was read and before the save.
		before    func(t *testing.T, uid uuid.UUID)
		wantFence bool
	}{
		{name: "nothing happened", before: func(*testing.T, uuid.UUID) {}},
		{name: "logout-all", wantFence: true, before: func(t *testing.T, uid uuid.UUID) {
			if _, err := tokens.RevokeAll(ctx, uid); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "erasure", wantFence: true, before: func(t *testing.T, uid uuid.UUID) {
			if err := tokens.Erase(ctx, uid); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "fence lapsed", before: func(t *testing.T, uid uuid.UUID) {
			if _, err := tokens.RevokeAll(ctx, uid); err != nil {
				t.Fatal(err)
			}
			eventually(t, "fence key expires", func() bool {
				return e.int(t, "EXISTS", key(uid, "fence")) == 0
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid := uuid.New()
			mustSave(t, store, alice(uid)) // a profile is cached
			oldGen := e.gen(t, uid)
			fence, err := store.Fence(ctx, uid)
			if err != nil || fence != "" {
				t.Fatalf("Fence = %q, %v; want \"\", nil", fence, err)
			}
			tt.before(t, uid)
			before := e.userKeys(t, uid)

			err = store.Save(ctx, richProfile(uid, "B", 30, 2, 1), fence)
			if !tt.wantFence {
				if err != nil {
					t.Fatalf("Save: %v", err)
				}
				if e.gen(t, uid) == oldGen {
					t.Fatal("Save did not switch the generation")
				}
				return
			}
			if !errors.Is(err, profile.ErrFenced) {
				t.Fatalf("Save = %v, want ErrFenced", err)
			}
			after := e.userKeys(t, uid)
			slices.Sort(before)
			slices.Sort(after)
			if !slices.Equal(before, after) {
				t.Errorf("a fenced save changed the user's keys:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// A fence read after the revocation lets the save through; an erasure's
// fence lets nothing through, whoever read it.
func TestSaveUnderFence(t *testing.T) { onTargets(t, testSaveUnderFence) }

func testSaveUnderFence(t *testing.T, e env) {
	ctx := context.Background()
	store := newProfileStore(e.client, redisrepo.ProfileOptions{})
	tokens := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{FenceTTL: time.Minute})

	uid := uuid.New()
	if _, err := tokens.RevokeAll(ctx, uid); err != nil {
		t.Fatal(err)
	}
	fence, err := store.Fence(ctx, uid)
	if err != nil || !strings.HasPrefix(string(fence), "r:") {
		t.Fatalf("Fence after RevokeAll = %q, %v", fence, err)
	}
	if err := store.Save(ctx, alice(uid), fence); err != nil {
		t.Fatalf("Save under the current fence: %v", err)
	}
	if err := store.Save(ctx, alice(uid), ""); !errors.Is(err, profile.ErrFenced) {
		t.Fatalf("Save under no fence after a revocation = %v, want ErrFenced", err)
	}

	if err := tokens.Erase(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if fence, err = store.Fence(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if err := store.Save(ctx, alice(uid), fence); !errors.Is(err, profile.ErrFenced) {
		t.Fatalf("Save under an erasure's fence = %v, want ErrFenced", err)
	}
	if keys := e.userKeys(t, uid); !slices.Equal(keys, []string{key(uid, "fence")}) {
		t.Errorf("keys = %v, want only the fence", keys)
	}
}

// Erase leaves nothing of the user but the fence, whose value is random and
// which expires after FenceTTL; other users keep everything.
func TestErase(t *testing.T) { onTargets(t, testErase) }

func testErase(t *testing.T, e env) {
	ctx := context.Background()
	const fenceTTL = 400 * time.Millisecond
	store := newProfileStore(e.client, redisrepo.ProfileOptions{})
	tokens := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{FenceTTL: fenceTTL})
	uid, bystander := uuid.New(), uuid.New()
	now := time.Now()
	for _, u := range []uuid.UUID{uid, bystander} {
		mustSave(t, store, alice(u))
		for _, id := range []string{"s1", "s2"} {
			mustCreate(t, tokens, newSession(u, id, now), time.Minute)
			if err := tokens.PutData(ctx, u, id, "cart", []byte("3 items")); err != nil {
				t.Fatal(err)
			}
			if _, err := tokens.Lookup(ctx, u, id); err != nil { // cached now
				t.Fatal(err)
			}
		}
	}
	if _, release, err := lockOf(store, uid); err != nil || release == nil {
		t.Fatalf("lock: %v", err)
	}
	// An orphaned generation: meta evicted, or a load that failed half-way.
	e.do(t, "HSET", key(uid, "orphan00", "basic"), "first", "Zoë")
	e.do(t, "RPUSH", key(uid, "orphan00", "orders"), "1", "2")
	bystanderKeys := len(e.userKeys(t, bystander))

	if err := tokens.Erase(ctx, uid); err != nil {
		t.Fatalf("Erase: %v", err)
	}
	for _, id := range []string{"s1", "s2"} {
		_, err := tokens.Lookup(ctx, uid, id)
		wantNotFound(t, "Lookup "+id+" right after Erase", err)
	}
	if _, err := store.Read(ctx, uid, profile.Query{Basic: true}); !errors.Is(err, profile.ErrNotFound) {
		t.Errorf("Read after Erase = %v, want ErrNotFound", err)
	}
	if keys := e.userKeys(t, uid); !slices.Equal(keys, []string{key(uid, "fence")}) {
		t.Errorf("keys after Erase = %v, want only the fence", keys)
	}
	if pttl := e.int(t, "PTTL", key(uid, "fence")); pttl <= 0 || pttl > fenceTTL.Milliseconds() {
		t.Errorf("fence PTTL = %d ms, want 1..%d", pttl, fenceTTL.Milliseconds())
	}
	if v := e.str(t, "GET", key(uid, "fence")); strings.Contains(v, uid.String()) || !strings.HasPrefix(v, "e:") {
		t.Errorf("fence value %q: want an erasure fence with nothing of the user", v)
	}
	if got := len(e.userKeys(t, bystander)); got != bystanderKeys {
		t.Errorf("bystander has %d keys after the erasure, want %d", got, bystanderKeys)
	}
	eventually(t, "the fence expires", func() bool { return len(e.userKeys(t, uid)) == 0 })
	if err := tokens.Erase(ctx, uid); err != nil {
		t.Errorf("second Erase: %v", err)
	}
}

// lockOf takes the user's reload lock, as a reload in flight would hold it.
func lockOf(s *redisrepo.ProfileStore, uid uuid.UUID) (bool, func(context.Context) error, error) {
	release, ok, err := s.TryLock(context.Background(), uid, time.Minute)
	return ok, release, err
}
