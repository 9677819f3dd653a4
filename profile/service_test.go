package profile_test

import (
	"context"
	"errors"
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

var alice = profile.DemoUserID("alice@example.com")

// countingBackend is the demo CRM with a count of full loads (one LoadBasic
// per load) and an optional gate that holds LoadOrders until released.
type countingBackend struct {
	*profile.MockBackend
	loads   atomic.Int64
	gate    chan struct{} // nil: no gate
	entered chan struct{}
}

func newCountingBackend(latency time.Duration) *countingBackend {
	return &countingBackend{MockBackend: profile.NewMockBackend(latency), entered: make(chan struct{}, 100)}
}

func (b *countingBackend) LoadBasic(ctx context.Context, id uuid.UUID) (profile.Basic, error) {
	b.loads.Add(1)
	return b.MockBackend.LoadBasic(ctx, id)
}

func (b *countingBackend) LoadOrders(ctx context.Context, id uuid.UUID) ([]profile.Order, error) {
	if b.gate != nil {
		b.entered <- struct{}{}
		select {
		case <-b.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return b.MockBackend.LoadOrders(ctx, id)
}

// newService is one "instance": its own Redis client and its own Service on
// the shared test server.
func newService(t *testing.T, srv redistest.Target, b profile.Backend, opts profile.Options) (*profile.Service, *redisrepo.ProfileStore) {
	t.Helper()
	store := redisrepo.NewProfileStore(srv.Client(t), redisrepo.ProfileOptions{})
	if opts.PollInterval == 0 {
		opts.PollInterval = 5 * time.Millisecond
	}
	return profile.NewService(b, store, store, opts), store
}

func TestServiceLoginPreloads(t *testing.T) { redistest.Targets(t, testServiceLoginPreloads) }

func testServiceLoginPreloads(t *testing.T, srv redistest.Target) {
	b := newCountingBackend(0)
	svc, _ := newService(t, srv, b, profile.Options{})
	ctx := context.Background()

	if _, _, err := svc.Login(ctx, "alice@example.com", "wrong"); !errors.Is(err, profile.ErrInvalidCredentials) {
		t.Fatalf("bad password: err=%v, want ErrInvalidCredentials", err)
	}
	id, _, err := svc.Login(ctx, "alice@example.com", "alice-secret")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.loads.Load(), int64(1); got != want {
		t.Fatalf("loads after login=%d, want %d", got, want)
	}
	v, err := svc.Read(ctx, id, profile.Query{Basic: true, Orders: &profile.Page{Offset: 0, Limit: 20}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.Basic.LastName, "Ångström"; got != want {
		t.Fatalf("last name=%q, want %q", got, want)
	}
	if got, want := v.Orders.Total, 25; got != want {
		t.Fatalf("orders total=%d, want %d", got, want)
	}
	if got, want := b.loads.Load(), int64(1); got != want {
		t.Fatalf("loads after read=%d, want %d (reads must come from the cache)", got, want)
	}
}

// However many requests miss at once, in one process or on several instances
// sharing the Redis, the backend is asked once.
func TestServiceConcurrentMissLoadsOnce(t *testing.T) {
	redistest.Targets(t, testServiceConcurrentMissLoadsOnce)
}

func testServiceConcurrentMissLoadsOnce(t *testing.T, srv redistest.Target) {
	for _, instances := range []int{1, 3} {
		t.Run(map[int]string{1: "OneInstance", 3: "ThreeInstances"}[instances], func(t *testing.T) {
			b := newCountingBackend(30 * time.Millisecond)
			var svcs []*profile.Service
			var store *redisrepo.ProfileStore
			for range instances {
				s, st := newService(t, srv, b, profile.Options{})
				svcs, store = append(svcs, s), st
			}
			ctx := context.Background()
			if err := store.Delete(ctx, alice); err != nil {
				t.Fatal(err)
			}
			const callers = 60
			var wg sync.WaitGroup
			errs := make(chan error, callers)
			start := make(chan struct{})
			for i := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					v, err := svcs[i%instances].Read(ctx, alice, profile.Query{Basic: true, Orders: &profile.Page{Limit: 5}})
					if err == nil && v.Orders.Total != 25 {
						err = errors.New("wrong orders total")
					}
					errs <- err
				}()
			}
			close(start)
			wg.Wait()
			checkOneLoad(t, errs, b)
		})
	}
}

func TestServiceConcurrentRefreshLoadsOnce(t *testing.T) {
	redistest.Targets(t, testServiceConcurrentRefreshLoadsOnce)
}

func testServiceConcurrentRefreshLoadsOnce(t *testing.T, srv redistest.Target) {
	b := newCountingBackend(0)
	b.gate = make(chan struct{})
	s1, _ := newService(t, srv, b, profile.Options{})
	s2, _ := newService(t, srv, b, profile.Options{})
	ctx := context.Background()

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
	<-b.entered // one load is in the backend
	// Give the other callers time to queue up behind it; a straggler that
	// arrives after the load ends would rightly start a second one.
	time.Sleep(200 * time.Millisecond)
	close(b.gate)
	wg.Wait()
	checkOneLoad(t, errs, b)
}

// checkOneLoad fails on any caller's error (errs is closed here, after every
// caller sent) and unless the backend served exactly one load.
func checkOneLoad(t *testing.T, errs chan error, b *countingBackend) {
	t.Helper()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := b.loads.Load(), int64(1); got != want {
		t.Fatalf("backend loads=%d, want %d", got, want)
	}
}

// A running refresh never blocks reads: they are served the old profile.
func TestServiceReadsGoOnDuringRefresh(t *testing.T) {
	redistest.Targets(t, testServiceReadsGoOnDuringRefresh)
}

func testServiceReadsGoOnDuringRefresh(t *testing.T, srv redistest.Target) {
	b := newCountingBackend(0)
	svc, _ := newService(t, srv, b, profile.Options{})
	ctx := context.Background()
	if err := svc.Refresh(ctx, alice); err != nil {
		t.Fatal(err)
	}
	b.gate = make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- svc.Refresh(ctx, alice) }()
	<-b.entered // the refresh now holds the reload lock and waits in the backend
	for range 50 {
		v, err := svc.Read(ctx, alice, profile.Query{Basic: true, Orders: &profile.Page{Offset: 20, Limit: 20}})
		if err != nil {
			t.Fatalf("read during refresh: %v", err)
		}
		if got, want := len(v.Orders.Items), 5; got != want {
			t.Fatalf("items=%d, want %d", got, want)
		}
	}
	close(b.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := b.loads.Load(), int64(2); got != want {
		t.Fatalf("backend loads=%d, want %d", got, want)
	}
}

// A backend that never answers gives ErrUnavailable within the configured
// bound, and nothing is written.
func TestServiceBackendTimeout(t *testing.T) { redistest.Targets(t, testServiceBackendTimeout) }

func testServiceBackendTimeout(t *testing.T, srv redistest.Target) {
	b := newCountingBackend(0)
	b.gate = make(chan struct{}) // never opened
	svc, store := newService(t, srv, b, profile.Options{BackendTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	_, err := svc.Read(ctx, alice, profile.Query{Basic: true})
	if !errors.Is(err, profile.ErrUnavailable) {
		t.Fatalf("err=%v, want ErrUnavailable", err)
	}
	if _, err := store.Read(ctx, alice, profile.Query{Basic: true}); !errors.Is(err, profile.ErrNotFound) {
		t.Fatalf("store after failed load: err=%v, want ErrNotFound (nothing half-written)", err)
	}
}

// A lock whose owner died is released by its TTL and the next request loads.
func TestServiceDeadLockOwner(t *testing.T) { redistest.Targets(t, testServiceDeadLockOwner) }

func testServiceDeadLockOwner(t *testing.T, srv redistest.Target) {
	ctx := context.Background()
	tests := []struct {
		name      string
		preload   bool // a profile is cached before the owner dies
		call      func(*profile.Service) error
		wantLoads int64
	}{
		{name: "Miss", call: func(s *profile.Service) error {
			_, err := s.Read(ctx, alice, profile.Query{Basic: true})
			return err
		}, wantLoads: 1},
		// A refresh must not take the dead owner's lock expiring for its
		// own load: the version did not change, so it loads itself.
		{name: "Refresh", preload: true, call: func(s *profile.Service) error {
			return s.Refresh(ctx, alice)
		}, wantLoads: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newCountingBackend(0)
			svc, store := newService(t, srv, b, profile.Options{BackendTimeout: 2 * time.Second})
			if err := store.Delete(ctx, alice); err != nil {
				t.Fatal(err)
			}
			if tt.preload {
				if err := svc.Refresh(ctx, alice); err != nil {
					t.Fatal(err)
				}
			}
			if _, ok, err := store.TryLock(ctx, alice, 200*time.Millisecond); err != nil || !ok {
				t.Fatalf("take lock: ok=%v err=%v", ok, err)
			}
			// The owner "dies": it never releases.
			if err := tt.call(svc); err != nil {
				t.Fatalf("behind a dead owner's lock: %v", err)
			}
			if got, want := b.loads.Load(), tt.wantLoads; got != want {
				t.Fatalf("backend loads=%d, want %d", got, want)
			}
		})
	}
}

// A key evicted behind our back (here: one order hash deleted) is healed by
// one reload.
func TestServiceReloadsEvictedKey(t *testing.T) { redistest.Targets(t, testServiceReloadsEvictedKey) }

func testServiceReloadsEvictedKey(t *testing.T, srv redistest.Target) {
	b := newCountingBackend(0)
	svc, _ := newService(t, srv, b, profile.Options{})
	ctx := context.Background()
	if err := svc.Refresh(ctx, alice); err != nil {
		t.Fatal(err)
	}
	raw := srv.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true })
	keys := redistest.Keys(t, raw, "*{u:"+alice.String()+"}*:order:*")
	if len(keys) == 0 {
		t.Fatal("found no order keys")
	}
	for _, k := range keys {
		if err := raw.Do(ctx, raw.B().Del().Key(k).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	v, err := svc.Read(ctx, alice, profile.Query{Orders: &profile.Page{Limit: 20}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(v.Orders.Items), 20; got != want {
		t.Fatalf("items=%d, want %d", got, want)
	}
	if got, want := b.loads.Load(), int64(2); got != want {
		t.Fatalf("backend loads=%d, want %d", got, want)
	}
}

func TestServiceRejectsBadPages(t *testing.T) {
	svc := profile.NewService(profile.NewMockBackend(0), nil, nil, profile.Options{})
	for _, p := range []profile.Page{{Offset: -1, Limit: 1}, {Limit: 0}, {Limit: 101}} {
		if _, err := svc.Read(context.Background(), alice, profile.Query{Orders: &p}); !errors.Is(err, profile.ErrInvalidPage) {
			t.Fatalf("page %+v: err=%v, want ErrInvalidPage", p, err)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
