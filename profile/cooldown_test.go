package profile_test

import (
	"context"
	"errors"
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

// fakeClock is one clock for the stores (which stamp a save) and the
// services (which measure the age) of a test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newClockedService is one instance whose store and service read clock.
func newClockedService(t *testing.T, srv redistest.Target, b profile.Backend, clock *fakeClock, opts profile.Options) (*profile.Service, *redisrepo.ProfileStore) {
	t.Helper()
	store := redisrepo.NewProfileStore(srv.Client(t), redisrepo.ProfileOptions{Now: clock.Now})
	opts.PollInterval = 5 * time.Millisecond
	opts.Now = clock.Now
	return profile.NewService(b, store, store, opts), store
}

// wantTooSoon fails unless err is a *TooSoonError that asks to wait exactly
// wait (the fake clock does not move by itself).
func wantTooSoon(t *testing.T, err error, wait time.Duration) {
	t.Helper()
	var soon *profile.TooSoonError
	if !errors.As(err, &soon) || !errors.Is(err, profile.ErrTooSoon) {
		t.Fatalf("err = %v, want a TooSoonError", err)
	}
	if soon.RetryAfter() != wait {
		t.Fatalf("RetryAfter = %v, want %v", soon.RetryAfter(), wait)
	}
}

// A refresh of a profile younger than the cooldown is refused, on every
// instance, without a backend load; once the profile is as old as the
// cooldown it reloads. Logins, misses and the webhook are not refreshes.
func TestServiceRefreshCooldown(t *testing.T) { redistest.Targets(t, testServiceRefreshCooldown) }

func testServiceRefreshCooldown(t *testing.T, srv redistest.Target) {
	const cooldown = 10 * time.Second
	clock := &fakeClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	b := newCountingBackend(0)
	s1, store := newClockedService(t, srv, b, clock, profile.Options{RefreshCooldown: cooldown})
	s2, _ := newClockedService(t, srv, b, clock, profile.Options{RefreshCooldown: cooldown})
	ctx := context.Background()
	loads := func(want int64) {
		t.Helper()
		if got := b.loads.Load(); got != want {
			t.Fatalf("backend loads = %d, want %d", got, want)
		}
	}

	if err := s1.Refresh(ctx, alice); err != nil { // no profile yet: old enough
		t.Fatal(err)
	}
	loads(1)
	wantTooSoon(t, s1.Refresh(ctx, alice), cooldown)
	wantTooSoon(t, s2.Refresh(ctx, alice), cooldown) // the other instance knows
	clock.Add(cooldown - 300*time.Millisecond)
	wantTooSoon(t, s2.Refresh(ctx, alice), 300*time.Millisecond)
	loads(1)
	clock.Add(300 * time.Millisecond) // exactly the cooldown old
	if err := s2.Refresh(ctx, alice); err != nil {
		t.Fatal(err)
	}
	loads(2)
	wantTooSoon(t, s1.Refresh(ctx, alice), cooldown)

	// Login's preload is not a refresh: it loads, young profile or not.
	if _, _, err := s1.Login(ctx, "alice@example.com", "alice-secret"); err != nil {
		t.Fatal(err)
	}
	loads(3)
	// The CRM's webhook is not subject to the cooldown, and a dropped
	// profile has no age: the next refresh loads.
	if err := s2.ProfileChanged(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := s1.Refresh(ctx, alice); err != nil {
		t.Fatal(err)
	}
	loads(4)
	// A miss reloads whatever the cooldown, and counts as a load.
	if err := store.Delete(ctx, alice); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Second)
	if _, err := s2.Read(ctx, alice, profile.Query{Basic: true}); err != nil {
		t.Fatal(err)
	}
	loads(5)
	wantTooSoon(t, s1.Refresh(ctx, alice), cooldown)

	// A clock ahead of ours stamped the profile in our future: never
	// ask for more than the cooldown.
	clock.Add(-time.Minute)
	wantTooSoon(t, s1.Refresh(ctx, alice), cooldown)
	loads(5)

	// Without a cooldown every refresh loads.
	s0, _ := newClockedService(t, srv, b, clock, profile.Options{})
	for range 2 {
		if err := s0.Refresh(ctx, alice); err != nil {
			t.Fatal(err)
		}
	}
	loads(7)
}

// lyingStore reports the profile as old the first time it is asked: what
// an instance sees when its age check runs just before another instance's
// load is saved.
type lyingStore struct {
	*redisrepo.ProfileStore
	lied atomic.Bool
}

func (s *lyingStore) Loaded(ctx context.Context, id uuid.UUID) (time.Time, error) {
	if s.lied.CompareAndSwap(false, true) {
		return time.Time{}, nil
	}
	return s.ProfileStore.Loaded(ctx, id)
}

// A refresh that passed the age check while another instance was loading
// is served by that load once it holds the lock: no second backend load.
func TestServiceRefreshCooldownRecheckedUnderLock(t *testing.T) {
	redistest.Targets(t, testServiceRefreshCooldownRecheckedUnderLock)
}

func testServiceRefreshCooldownRecheckedUnderLock(t *testing.T, srv redistest.Target) {
	clock := &fakeClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	b := newCountingBackend(0)
	s1, _ := newClockedService(t, srv, b, clock, profile.Options{RefreshCooldown: time.Minute})
	ctx := context.Background()
	if err := s1.Refresh(ctx, alice); err != nil {
		t.Fatal(err)
	}
	store := &lyingStore{ProfileStore: redisrepo.NewProfileStore(srv.Client(t), redisrepo.ProfileOptions{Now: clock.Now})}
	s2 := profile.NewService(b, store, store, profile.Options{RefreshCooldown: time.Minute, Now: clock.Now})
	if err := s2.Refresh(ctx, alice); err != nil {
		t.Fatalf("a refresh served by a load that finished meanwhile: %v, want nil", err)
	}
	if got := b.loads.Load(); got != 1 {
		t.Fatalf("backend loads = %d, want 1", got)
	}
}

// Concurrent refreshes of an old profile on two instances, under a
// cooldown, still share one backend load, and none of them is refused: they
// all asked before the load finished.
func TestServiceConcurrentRefreshUnderCooldownLoadsOnce(t *testing.T) {
	redistest.Targets(t, testServiceConcurrentRefreshUnderCooldownLoadsOnce)
}

func testServiceConcurrentRefreshUnderCooldownLoadsOnce(t *testing.T, srv redistest.Target) {
	b := newCountingBackend(0)
	ctx := context.Background()
	s0, _ := newService(t, srv, b, profile.Options{})
	if err := s0.Refresh(ctx, alice); err != nil {
		t.Fatal(err)
	}
	// Make the cached profile an hour old.
	raw := srv.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true })
	old := strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10)
	meta := "pc:{u:" + alice.String() + "}:meta"
	if err := raw.Do(ctx, raw.B().Hset().Key(meta).FieldValue().FieldValue("loaded", old).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	b.loads.Store(0)
	b.gate = make(chan struct{})
	s1, _ := newService(t, srv, b, profile.Options{RefreshCooldown: time.Minute})
	s2, _ := newService(t, srv, b, profile.Options{RefreshCooldown: time.Minute})

	var wg, started sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			errs <- []*profile.Service{s1, s2}[i%2].Refresh(ctx, alice)
		}()
	}
	started.Wait()
	<-b.entered
	time.Sleep(200 * time.Millisecond) // let the others queue up, as in TestServiceConcurrentRefreshLoadsOnce
	close(b.gate)
	wg.Wait()
	checkOneLoad(t, errs, b)
	if err := s2.Refresh(ctx, alice); !errors.Is(err, profile.ErrTooSoon) {
		t.Fatalf("a refresh after the shared load: %v, want ErrTooSoon", err)
	}
}
