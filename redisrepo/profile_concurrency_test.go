package redisrepo_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// viewOf is what Read must return for q when p is stored.
func viewOf(p *profile.Profile, q profile.Query) profile.View {
	var v profile.View
	if q.Basic {
		v.Basic = p.Basic
	}
	if q.Interests {
		v.Interests = uniqSorted(p.Interests)
	}
	v.Orders = sliceOf(p.Orders, q.Orders)
	v.Invoices = sliceOf(p.Invoices, q.Invoices)
	v.Inquiries = sliceOf(p.Inquiries, q.Inquiries)
	return v
}

func uniqSorted(ss []string) []string {
	m := map[string]bool{}
	out := []string{}
	for _, s := range ss {
		if !m[s] {
			m[s] = true
			out = append(out, s)
		}
	}
	sortStrings(out)
	return out
}

func sliceOf[T any](all []T, pg *profile.Page) profile.Slice[T] {
	if pg == nil {
		return profile.Slice[T]{}
	}
	from := min(pg.Offset, len(all))
	to := min(pg.Offset+pg.Limit, len(all))
	return profile.Slice[T]{Items: append([]T{}, all[from:to]...), Total: len(all)}
}

// A reader never sees half of a replace: with one goroutine replacing the
// profile as fast as it can, alternating A and B, every Read on either
// client (the writer's own, and an independent one whose cache is
// invalidated remotely) is entirely A or entirely B, and never not found.
// Small profiles meet many replaces; carol-sized ones are written in many
// batches (issue 11), and readers run while the batches of the new one are
// written and while those of the old one are deleted.
func TestReplaceIsAtomicForConcurrentReaders(t *testing.T) {
	onTargets(t, testReplaceIsAtomicForConcurrentReaders)
}

func testReplaceIsAtomicForConcurrentReaders(t *testing.T, e env) {
	tests := []struct {
		name               string
		a, b               [3]int // orders, invoices, inquiries
		saves              int
		orders             *profile.Page
		wantBatchesAtLeast int
	}{
		{name: "small", a: [3]int{30, 8, 4}, b: [3]int{27, 5, 2}, saves: 80, orders: page(5, 20)},
		// A page that spans the end of B's orders, written in the last
		// batches: a reader of a half-written B would see A's.
		{name: "carol-sized", a: [3]int{1500, 120, 40}, b: [3]int{1290, 100, 30}, saves: 6, orders: page(1280, 20),
			wantBatchesAtLeast: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid := uuid.New()
			a := richProfile(uid, "A", tt.a[0], tt.a[1], tt.a[2])
			b := richProfile(uid, "B", tt.b[0], tt.b[1], tt.b[2])
			if n := writeBatches(b); n < tt.wantBatchesAtLeast {
				t.Fatalf("B is written in %d batches, want at least %d", n, tt.wantBatchesAtLeast)
			}
			replaceUnderReaders(t, e, uid, a, b, tt.saves,
				profile.Query{Basic: true, Interests: true, Orders: tt.orders, Invoices: page(0, 10), Inquiries: page(1, 10)})
			// Nothing is left of the replaced generations but the last.
			if got, want := len(e.userKeys(t, uid)), 1+1+1+3+tt.a[0]+tt.a[1]+tt.a[2]; got != want {
				t.Errorf("after the replaces: %d keys, want %d", got, want)
			}
		})
	}
}

// replaceUnderReaders saves a, then a and b alternately saves times (b
// first, a last) while four readers read q.
func replaceUnderReaders(t *testing.T, e env, uid uuid.UUID, a, b *profile.Profile, saves int, q profile.Query) {
	other := e.srv.Client(t)
	writer := newProfileStore(e.client, redisrepo.ProfileOptions{})
	readers := []*redisrepo.ProfileStore{writer, newProfileStore(other, redisrepo.ProfileOptions{})}
	wantA, wantB := viewOf(a, q), viewOf(b, q)
	mustSave(t, writer, a)

	var done atomic.Bool
	var sawA, sawB, reads atomic.Int64
	var wg sync.WaitGroup
	for i := range 4 {
		s := readers[i%len(readers)]
		wg.Go(func() {
			for !done.Load() {
				v, err := s.Read(context.Background(), uid, q)
				reads.Add(1)
				switch {
				case err != nil:
					t.Errorf("reader %d: Read: %v", i, err)
					return
				case reflect.DeepEqual(v, wantA):
					sawA.Add(1)
				case reflect.DeepEqual(v, wantB):
					sawB.Add(1)
				default:
					t.Errorf("reader %d: a view that is neither A nor B: %s", i, describe(v))
					return
				}
				// Hot reads never block: without this, four readers on
				// two cores starve the writer between its round trips.
				runtime.Gosched()
			}
		})
	}
	for i := range saves {
		// Back to back, and with pauses in which readers get to cache a
		// generation, so that both read paths meet a replace.
		if i%4 == 1 || i%4 == 2 { // after each of A and B
			time.Sleep(time.Millisecond)
		}
		p := a
		if i%2 == 0 {
			p = b
		}
		if err := writer.Save(context.Background(), p, ""); err != nil {
			t.Errorf("Save %d: %v", i, err)
			break
		}
	}
	done.Store(true)
	wg.Wait()
	t.Logf("%d saves, %d reads: %d A, %d B", saves, reads.Load(), sawA.Load(), sawB.Load())
	if sawA.Load() == 0 || sawB.Load() == 0 {
		t.Errorf("readers saw A %d and B %d times, want both", sawA.Load(), sawB.Load())
	}
}

// describe summarises a view by the tags in it, to show a mix.
func describe(v profile.View) string {
	s := fmt.Sprintf("basic=%q interests=%q", v.Basic.FirstName, v.Interests)
	for _, o := range v.Orders.Items {
		s += " " + o.ID
	}
	return s + fmt.Sprintf(" totals=%d/%d/%d", v.Orders.Total, v.Invoices.Total, v.Inquiries.Total)
}

// Another client's change reaches a reader whose copy is cached, through
// Redis's invalidation.
func TestCrossClientInvalidation(t *testing.T) { onTargets(t, testCrossClientInvalidation) }

func testCrossClientInvalidation(t *testing.T, e env) {
	clientB := e.srv.Client(t)
	storeA := newProfileStore(e.client, redisrepo.ProfileOptions{})
	storeB := newProfileStore(clientB, redisrepo.ProfileOptions{})
	ctx := context.Background()
	uid := uuid.New()
	a, b := alice(uid), richProfile(uid, "B", 3, 1, 0)
	q := profile.Query{Basic: true, Interests: true, Orders: page(0, 20)}

	mustSave(t, storeB, a)
	for range 2 {
		if v, err := storeA.Read(ctx, uid, q); err != nil || !reflect.DeepEqual(v, viewOf(a, q)) {
			t.Fatalf("Read = %s, %v; want A", describe(v), err)
		}
	}
	// The reads went through A's client-side cache: meta is a local hit now.
	metaCmd := e.client.B().Hmget().Key(key(uid, "meta")).Field(redisrepo.MetaFields...).Cache()
	if r := e.client.DoCache(ctx, metaCmd, time.Minute); !r.IsCacheHit() {
		t.Fatalf("meta is not in client A's cache after two reads (err %v)", r.Error())
	}

	t.Run("replace", func(t *testing.T) {
		mustSave(t, storeB, b)
		eventually(t, "client A sees B", func() bool {
			v, err := storeA.Read(ctx, uid, q)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			return reflect.DeepEqual(v, viewOf(b, q))
		})
	})
	t.Run("edit behind the store's back", func(t *testing.T) {
		e.do(t, "HSET", key(uid, e.gen(t, uid), "basic"), "first_name", "Edited")
		eventually(t, "client A sees the edit", func() bool {
			v, err := storeA.Read(ctx, uid, q)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			return v.Basic.FirstName == "Edited"
		})
	})
	t.Run("delete", func(t *testing.T) {
		if err := storeB.Delete(ctx, uid); err != nil {
			t.Fatal(err)
		}
		eventually(t, "client A sees the delete", func() bool {
			_, err := storeA.Read(ctx, uid, q)
			if err != nil && !errors.Is(err, profile.ErrNotFound) {
				t.Fatalf("Read error = %v, want ErrNotFound", err)
			}
			return err != nil
		})
	})
}
