package profile_test

import (
	"context"
	"errors"
	"slices"
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

// Per-section freshness (issue 12), on real Redis: two Services with their
// own clients are two instances.

// freshBackend is the demo CRM whose orders are one order tagged with the
// current version, which can fail, and whose next orders load can be held
// after it has read its answer (a reload that read old data and commits
// late).
type freshBackend struct {
	*profile.MockBackend
	orders atomic.Int64
	mu     sync.Mutex
	tag    string
	fail   bool
	hold   chan struct{} // the next LoadOrders waits for it to close
	held   chan struct{} // signalled when a load is held
}

func newFreshBackend(tag string) *freshBackend {
	return &freshBackend{MockBackend: profile.NewMockBackend(0), tag: tag, held: make(chan struct{}, 1)}
}

func (b *freshBackend) set(f func(b *freshBackend)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}

func (b *freshBackend) LoadOrders(ctx context.Context, id uuid.UUID) ([]profile.Order, error) {
	b.orders.Add(1)
	b.mu.Lock()
	tag, fail, hold := b.tag, b.fail, b.hold
	b.hold = nil
	b.mu.Unlock()
	if fail {
		return nil, errors.New("crm: orders: 503")
	}
	out := []profile.Order{{ID: tag + "-1", Number: tag, Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Status: "new", Total: 100, Currency: "EUR", ItemCount: 1, ShippingCity: "Lund"}}
	if hold != nil {
		b.held <- struct{}{}
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

// clock is a shared clock that tests move forward, so that sections age
// without waiting.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// reloads records the section reloads' outcomes.
type reloads struct {
	mu  sync.Mutex
	got []string
}

func (r *reloads) record(sec profile.Section, outcome string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, sec.String()+":"+outcome)
}

func (r *reloads) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, g := range r.got {
		if g == s {
			n++
		}
	}
	return n
}

var ordersFresh = profile.Freshness{Window: [profile.NumSections]time.Duration{profile.SectionOrders: time.Minute}, StaleMax: 10 * time.Minute}

// newFreshService is one instance with freshness on, woken by
// invalidations.
func newFreshService(t *testing.T, srv redistest.Target, b profile.Backend, clk *clock, r *reloads, waits *atomic.Int64) *profile.Service {
	t.Helper()
	wake := redisrepo.NewWakeups()
	client := srv.Client(t, func(o *rueidis.ClientOption) { o.OnInvalidations = wake.OnInvalidations })
	store := redisrepo.NewProfileStore(client, redisrepo.ProfileOptions{Now: clk.now, Wakeups: wake})
	svc := profile.NewService(b, store, store, profile.Options{Fresh: ordersFresh, Now: clk.now,
		OnSectionReload: r.record, OnReadWait: func(string) { waits.Add(1) }})
	t.Cleanup(svc.Close)
	return svc
}

var ordersPage = profile.Query{Orders: &profile.Page{Offset: 0, Limit: 10}}

func ordersTag(t *testing.T, v profile.View) string {
	t.Helper()
	if len(v.Orders.Items) != 1 {
		t.Fatalf("%d orders, want 1", len(v.Orders.Items))
	}
	return v.Orders.Items[0].Number
}

func loginAlice(t *testing.T, svc *profile.Service) {
	t.Helper()
	if _, _, err := svc.Login(context.Background(), "alice@example.com", "alice-secret"); err != nil {
		t.Fatal(err)
	}
}

// A stale section is served at once, marked, and reloaded in the
// background once across two instances, however many reads see it stale.
func TestFreshStaleSectionReloadedOnceAcrossInstances(t *testing.T) {
	redistest.Targets(t, func(t *testing.T, srv redistest.Target) {
		ctx := context.Background()
		b, clk, r := newFreshBackend("v1"), &clock{}, &reloads{}
		var waits atomic.Int64
		a, c := newFreshService(t, srv, b, clk, r, &waits), newFreshService(t, srv, b, clk, r, &waits)
		loginAlice(t, a)

		hold := make(chan struct{})
		b.set(func(b *freshBackend) { b.tag, b.hold = "v2", hold })
		clk.advance(2 * time.Minute)
		// While the reload is held at the CRM, every read on both
		// instances answers with the cached orders, marked stale.
		for i := range 40 {
			v, err := []*profile.Service{a, c}[i%2].Read(ctx, alice, ordersPage)
			if err != nil {
				t.Fatal(err)
			}
			if tag := ordersTag(t, v); tag != "v1" || !slices.Equal(v.Stale, []profile.Section{profile.SectionOrders}) {
				t.Fatalf("read %d during the reload: orders %s, stale %v; want v1 marked stale", i, tag, v.Stale)
			}
		}
		<-b.held
		close(hold)
		for _, svc := range []*profile.Service{a, c} {
			waitFor(t, func() bool {
				v, err := svc.Read(ctx, alice, ordersPage)
				return err == nil && ordersTag(t, v) == "v2" && len(v.Stale) == 0
			})
		}
		if got := b.orders.Load(); got != 2 {
			t.Errorf("CRM orders loads: %d, want 2 (the login and one reload for 40 stale reads on two instances)", got)
		}
		if got := b.SectionLoads(); got != 4 {
			t.Errorf("CRM loads of the other sections: %d, want 4 (the login's only)", got)
		}
		if n := waits.Load(); n != 0 {
			t.Errorf("%d reads waited for the CRM, want 0", n)
		}
		if got := r.count("orders:ok"); got != 1 {
			t.Errorf("section reloads %v, want one orders:ok", r.got)
		}
	})
}

// A failing CRM: the cached section is served, marked stale, and the
// failed reload is not retried by every read.
func TestFreshFailingBackendServesStale(t *testing.T) {
	redistest.Targets(t, func(t *testing.T, srv redistest.Target) {
		ctx := context.Background()
		b, clk, r := newFreshBackend("v1"), &clock{}, &reloads{}
		var waits atomic.Int64
		a, c := newFreshService(t, srv, b, clk, r, &waits), newFreshService(t, srv, b, clk, r, &waits)
		loginAlice(t, a)
		b.set(func(b *freshBackend) { b.fail = true })
		clk.advance(2 * time.Minute)
		for i := range 40 {
			v, err := []*profile.Service{a, c}[i%2].Read(ctx, alice, ordersPage)
			if err != nil {
				t.Fatalf("read %d with the CRM down: %v", i, err)
			}
			if tag := ordersTag(t, v); tag != "v1" || !slices.Equal(v.Stale, []profile.Section{profile.SectionOrders}) {
				t.Fatalf("read %d with the CRM down: orders %s, stale %v; want v1 marked stale", i, tag, v.Stale)
			}
		}
		waitFor(t, func() bool { return r.count("orders:error") == 1 })
		// The failed reload holds the section's lock for its backoff (a
		// minute here): the reads after it do not ask the CRM again.
		for i := range 20 {
			if _, err := []*profile.Service{a, c}[i%2].Read(ctx, alice, ordersPage); err != nil {
				t.Fatal(err)
			}
		}
		if got := b.orders.Load(); got != 2 {
			t.Errorf("CRM orders loads: %d, want 2 (the login and one failed reload)", got)
		}
		if n := waits.Load(); n != 0 {
			t.Errorf("%d reads waited for the CRM, want 0", n)
		}
	})
}

// A section older than StaleMax is reloaded before the read answers; if
// the CRM fails then, the read fails rather than serve it.
func TestFreshPastStaleMaxReloadsFirst(t *testing.T) {
	redistest.Targets(t, func(t *testing.T, srv redistest.Target) {
		ctx := context.Background()
		b, clk, r := newFreshBackend("v1"), &clock{}, &reloads{}
		var waits atomic.Int64
		a := newFreshService(t, srv, b, clk, r, &waits)
		loginAlice(t, a)
		b.set(func(b *freshBackend) { b.tag = "v2" })
		clk.advance(ordersFresh.StaleMax + time.Minute)
		v, err := a.Read(ctx, alice, ordersPage)
		if err != nil {
			t.Fatal(err)
		}
		if tag := ordersTag(t, v); tag != "v2" || len(v.Stale) != 0 {
			t.Fatalf("read past the stale limit: orders %s, stale %v; want v2, fresh", tag, v.Stale)
		}
		if waits.Load() != 1 || r.count("orders:ok") != 1 {
			t.Errorf("waits %d, reloads %v; want one wait and one orders:ok", waits.Load(), r.got)
		}
		b.set(func(b *freshBackend) { b.fail = true })
		clk.advance(ordersFresh.StaleMax + time.Minute)
		if _, err := a.Read(ctx, alice, ordersPage); !errors.Is(err, profile.ErrUnavailable) {
			t.Fatalf("read past the stale limit with the CRM down: %v, want ErrUnavailable", err)
		}
	})
}

// A section reload that read the CRM before a change, and commits after
// the change's webhook (or a refresh) has reloaded the profile, writes
// nothing: the older data never comes back.
func TestFreshReloadRacingChangeNeverResurrects(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(ctx context.Context, svc *profile.Service) error
	}{
		{"profile_changed", func(ctx context.Context, svc *profile.Service) error { return svc.ProfileChanged(ctx, alice) }},
		{"refresh", func(ctx context.Context, svc *profile.Service) error { return svc.Refresh(ctx, alice) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			redistest.Targets(t, func(t *testing.T, srv redistest.Target) {
				ctx := context.Background()
				b, clk, r := newFreshBackend("v1"), &clock{}, &reloads{}
				var waits atomic.Int64
				a, c := newFreshService(t, srv, b, clk, r, &waits), newFreshService(t, srv, b, clk, r, &waits)
				loginAlice(t, a)
				hold := make(chan struct{})
				b.set(func(b *freshBackend) { b.tag, b.hold = "v2", hold })
				clk.advance(2 * time.Minute)
				if _, err := a.Read(ctx, alice, ordersPage); err != nil {
					t.Fatal(err)
				}
				<-b.held // the background reload has read v2
				b.set(func(b *freshBackend) { b.tag = "v3" })
				if err := tt.change(ctx, c); err != nil {
					t.Fatal(err)
				}
				waitFor(t, func() bool {
					v, err := c.Read(ctx, alice, ordersPage)
					return err == nil && ordersTag(t, v) == "v3"
				})
				close(hold)
				waitFor(t, func() bool { return r.count("orders:superseded") == 1 })
				for _, svc := range []*profile.Service{a, c} {
					v, err := svc.Read(ctx, alice, ordersPage)
					if err != nil {
						t.Fatal(err)
					}
					if tag := ordersTag(t, v); tag != "v3" {
						t.Errorf("after the late reload: orders %s, want v3", tag)
					}
				}
			})
		})
	}
}
