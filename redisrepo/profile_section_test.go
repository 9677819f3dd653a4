package redisrepo_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// Section reloads (issue 12): one section replaced on its own, committed
// only if nothing newer happened, never touching the other sections.

// saveSection saves one section as the Service does, not fenced.
func saveSection(t *testing.T, s *redisrepo.ProfileStore, uid uuid.UUID, sec profile.Section, p *profile.Profile, base string) error {
	t.Helper()
	return s.SaveSection(context.Background(), uid, sec, p, base, "", 300*time.Millisecond)
}

func sectionVersion(t *testing.T, s *redisrepo.ProfileStore, uid uuid.UUID, sec profile.Section) string {
	t.Helper()
	st, err := s.SectionState(context.Background(), uid, sec)
	if err != nil {
		t.Fatal(err)
	}
	return st.Version
}

// A section reload writes that section's keys only, and switches only its
// pointer: carol's 2,000 orders are not rewritten when her basic data is
// reloaded, and readers see the new section with the old others.
func TestSaveSectionReplacesOnlyItsSection(t *testing.T) {
	onTargets(t, func(t *testing.T, e env) {
		ctx := context.Background()
		uid := uuid.New()
		s := newProfileStore(e.client, redisrepo.ProfileOptions{})
		old := carol(uid, 2000)
		mustSave(t, s, old)
		gen := e.gen(t, uid)
		before := e.userKeys(t, uid)

		fresh := carol(uid, 2000)
		fresh.Basic.FirstName = "Carola"
		if err := saveSection(t, s, uid, profile.SectionBasic, fresh, sectionVersion(t, s, uid, profile.SectionBasic)); err != nil {
			t.Fatal(err)
		}
		meta := e.strMap(t, "HGETALL", key(uid, "meta"))
		newGen := meta["g:basic"]
		if newGen == gen || meta["gen"] != gen {
			t.Fatalf("after a basic reload: g:basic=%q gen=%q, want a new g:basic and gen %q kept", newGen, meta["gen"], gen)
		}
		for _, sec := range []string{"interests", "orders", "invoices", "inquiries"} {
			if meta["g:"+sec] != gen {
				t.Errorf("g:%s = %q, want %q: a basic reload moved another section", sec, meta["g:"+sec], gen)
			}
		}
		if meta["d:basic"] != "300" || meta["l:basic"] == "" {
			t.Errorf("basic load fields: l=%q d=%q", meta["l:basic"], meta["d:basic"])
		}
		// Key by key: the old basic hash went, one new one came, nothing
		// else changed.
		after := e.userKeys(t, uid)
		wantAfter := slices.DeleteFunc(slices.Clone(before), func(k string) bool { return k == key(uid, gen, "basic") })
		wantAfter = append(wantAfter, key(uid, newGen, "basic"))
		sortStrings(after)
		sortStrings(wantAfter)
		if !reflect.DeepEqual(after, wantAfter) {
			t.Errorf("keys after a basic reload: %d, want %d (only the basic hash replaced)", len(after), len(wantAfter))
		}
		q := profile.Query{Basic: true, Orders: page(1990, 10), Loads: true}
		v, err := s.Read(ctx, uid, q)
		if err != nil {
			t.Fatal(err)
		}
		if v.Basic.FirstName != "Carola" || !reflect.DeepEqual(v.Orders, sliceOf(old.Orders, q.Orders)) {
			t.Errorf("read after a basic reload: first name %q, %d orders", v.Basic.FirstName, len(v.Orders.Items))
		}
		if !v.Loads[profile.SectionBasic].At.After(v.Loads[profile.SectionOrders].At.Add(-time.Millisecond)) ||
			v.Loads[profile.SectionBasic].Took != 300*time.Millisecond {
			t.Errorf("loads = %+v", v.Loads)
		}
		if cv, err := s.ReadConsistent(ctx, uid, q); err != nil || cv.Basic.FirstName != "Carola" {
			t.Errorf("consistent read after a basic reload: %q, %v", cv.Basic.FirstName, err)
		}
	})
}

// A reload of a list section replaces the whole list, items included, and
// the old items go.
func TestSaveSectionOrders(t *testing.T) {
	onTargets(t, func(t *testing.T, e env) {
		ctx := context.Background()
		uid := uuid.New()
		s := newProfileStore(e.client, redisrepo.ProfileOptions{})
		mustSave(t, s, alice(uid))
		gen := e.gen(t, uid)
		fresh := richProfile(uid, "N", 3, 0, 0)
		if err := saveSection(t, s, uid, profile.SectionOrders, fresh, gen); err != nil {
			t.Fatal(err)
		}
		v, err := s.Read(ctx, uid, everything)
		if err != nil {
			t.Fatal(err)
		}
		want := viewOf(alice(uid), everything)
		want.Orders = sliceOf(fresh.Orders, everything.Orders)
		if !reflect.DeepEqual(v, want) {
			t.Errorf("read after an orders reload: %s", describe(v))
		}
		for _, k := range e.userKeys(t, uid) {
			if strings.HasPrefix(k, key(uid, gen, "order")) {
				t.Errorf("old order key %s left after the orders reload", k)
			}
		}
		// Empty: the count says so, no key.
		if err := saveSection(t, s, uid, profile.SectionOrders, &profile.Profile{}, sectionVersion(t, s, uid, profile.SectionOrders)); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Read(ctx, uid, everything); err != nil || v.Orders.Total != 0 || len(v.Orders.Items) != 0 {
			t.Errorf("after emptying orders: %+v, %v", v.Orders, err)
		}
	})
}

// The switch is a compare-and-set: whatever happened since the reload
// began wins, and the reload leaves nothing behind.
func TestSaveSectionNeverUndoesNewerWrites(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		meantime func(t *testing.T, e env, s *redisrepo.ProfileStore, uid uuid.UUID)
		want     error
		// wantOrders: the orders' tag afterwards, "" for no profile.
		wantOrders string
	}{
		{"whole save", func(t *testing.T, e env, s *redisrepo.ProfileStore, uid uuid.UUID) {
			mustSave(t, s, richProfile(uid, "W", 5, 1, 1))
		}, profile.ErrSuperseded, "W"},
		{"another section reload", func(t *testing.T, e env, s *redisrepo.ProfileStore, uid uuid.UUID) {
			if err := saveSection(t, s, uid, profile.SectionOrders, richProfile(uid, "R", 4, 0, 0), e.gen(t, uid)); err != nil {
				t.Fatal(err)
			}
		}, profile.ErrSuperseded, "R"},
		{"webhook drop", func(t *testing.T, e env, s *redisrepo.ProfileStore, uid uuid.UUID) {
			if err := s.Delete(ctx, uid); err != nil {
				t.Fatal(err)
			}
		}, profile.ErrSuperseded, ""},
		{"logout-all fence", func(t *testing.T, e env, s *redisrepo.ProfileStore, uid uuid.UUID) {
			e.do(t, "SET", key(uid, "fence"), "r:elsewhere", "PX", "60000")
		}, profile.ErrFenced, "A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			onTargets(t, func(t *testing.T, e env) {
				uid := uuid.New()
				s := newProfileStore(e.client, redisrepo.ProfileOptions{})
				mustSave(t, s, alice(uid))
				base := sectionVersion(t, s, uid, profile.SectionOrders)
				tt.meantime(t, e, s, uid)
				keysBefore := e.userKeys(t, uid)
				err := saveSection(t, s, uid, profile.SectionOrders, richProfile(uid, "STALE", 7, 0, 0), base)
				if !errors.Is(err, tt.want) {
					t.Fatalf("SaveSection after a %s: %v, want %v", tt.name, err, tt.want)
				}
				if got := e.userKeys(t, uid); len(got) != len(keysBefore) {
					t.Errorf("the refused reload left %d keys, had %d", len(got), len(keysBefore))
				}
				v, err := s.Read(ctx, uid, profile.Query{Orders: page(0, 100)})
				switch {
				case tt.wantOrders == "":
					if !errors.Is(err, profile.ErrNotFound) {
						t.Errorf("read: %v, want not found", err)
					}
				case err != nil:
					t.Fatal(err)
				case len(v.Orders.Items) == 0 || !strings.HasPrefix(v.Orders.Items[0].ID, tt.wantOrders+"-"):
					t.Errorf("orders after the refused reload: %s, want tag %s", describe(v), tt.wantOrders)
				}
			})
		})
	}
}

// A meta written before sections had pointers (only gen) is read as
// before, and a section reload on it works.
func TestSectionsOnOldLayoutMeta(t *testing.T) {
	onTargets(t, func(t *testing.T, e env) {
		ctx := context.Background()
		uid := uuid.New()
		s := newProfileStore(e.client, redisrepo.ProfileOptions{})
		mustSave(t, s, alice(uid))
		gen := e.gen(t, uid)
		for sec := range profile.NumSections {
			e.do(t, "HDEL", key(uid, "meta"), "g:"+sec.String(), "l:"+sec.String(), "d:"+sec.String())
		}
		s2 := newProfileStore(e.raw, redisrepo.ProfileOptions{}) // no cached meta of the new layout
		if v, err := s2.Read(ctx, uid, everything); err != nil || !reflect.DeepEqual(v, viewOf(alice(uid), everything)) {
			t.Fatalf("old-layout read: %v", err)
		}
		if got := sectionVersion(t, s2, uid, profile.SectionOrders); got != gen {
			t.Fatalf("old-layout orders version %q, want gen %q", got, gen)
		}
		if err := saveSection(t, s2, uid, profile.SectionOrders, richProfile(uid, "N", 2, 0, 0), gen); err != nil {
			t.Fatal(err)
		}
		v, err := s2.Read(ctx, uid, everything)
		if err != nil || len(v.Orders.Items) != 2 || v.Basic.FirstName != alice(uid).Basic.FirstName {
			t.Fatalf("after a section reload on the old layout: %s, %v", describe(v), err)
		}
	})
}

// A waiter is woken by the lock key's invalidation, not by polling: while
// the lock is held it sends no command at all, and it returns once the
// lock is released or expires.
func TestWaitUnlockedWithoutPolling(t *testing.T) {
	onTargets(t, func(t *testing.T, e env) {
		ctx := context.Background()
		wake := redisrepo.NewWakeups()
		client := e.srv.Client(t, func(o *rueidis.ClientOption) { o.OnInvalidations = wake.OnInvalidations })
		s := newProfileStore(client, redisrepo.ProfileOptions{Wakeups: wake})
		for _, tt := range []struct {
			name   string
			ttl    time.Duration
			unlock bool
		}{{"released", time.Minute, true}, {"expired", 700 * time.Millisecond, false}} {
			uid := uuid.New()
			release, ok, err := s.TryLock(ctx, uid, tt.ttl)
			if err != nil || !ok {
				t.Fatalf("%s: TryLock: %v %v", tt.name, ok, err)
			}
			done := make(chan error, 1)
			go func() { done <- s.WaitUnlocked(ctx, uid) }()
			eventually(t, "the waiter registers", func() bool { return wake.Waiters() == 1 })
			before := lockReads(t, e)
			// A poller at 20 ms would send about 25 commands meanwhile.
			time.Sleep(500 * time.Millisecond)
			if got := lockReads(t, e) - before; got > 1 {
				t.Errorf("%s: the waiter sent %d GET/EXISTS while the lock was held, want at most 1", tt.name, got)
			}
			select {
			case err := <-done:
				t.Fatalf("%s: the waiter returned while the lock was held: %v", tt.name, err)
			default:
			}
			if tt.unlock {
				if err := release(ctx); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s: WaitUnlocked: %v", tt.name, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: the waiter was not woken", tt.name)
			}
			if n := wake.Waiters(); n != 0 {
				t.Errorf("%s: %d waiters still registered", tt.name, n)
			}
		}
	})
}

// lockReads is how many GET and EXISTS commands Redis has run, over every
// node.
func lockReads(t *testing.T, e env) int64 {
	t.Helper()
	var n int64
	for addr, node := range e.raw.Nodes() {
		info, err := node.Do(context.Background(), node.B().Info().Section("commandstats").Build()).ToString()
		if err != nil {
			t.Fatalf("INFO on %s: %v", addr, err)
		}
		for _, line := range strings.Split(info, "\n") {
			for _, cmd := range []string{"cmdstat_get:", "cmdstat_exists:"} {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(line), cmd); ok {
					var calls int64
					if _, err := fmt.Sscanf(rest, "calls=%d", &calls); err == nil {
						n += calls
					}
				}
			}
		}
	}
	return n
}
