package redisrepo_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

func TestSaveLayout(t *testing.T) { onTargets(t, testSaveLayout) }

func testSaveLayout(t *testing.T, e env) {
	const ttl = time.Hour
	s := newProfileStore(e.client, redisrepo.ProfileOptions{TTL: ttl, Now: func() time.Time { return t0 }})
	uid := uuid.New()
	p := alice(uid)
	mustSave(t, s, p)

	gen := e.gen(t, uid)
	if len(gen) != 8 {
		t.Fatalf("meta gen = %q, want 8 characters", gen)
	}
	type keyWant struct {
		key, typ, encoding string
	}
	wants := []keyWant{
		{key(uid, "meta"), "hash", "listpack"},
		{key(uid, gen, "basic"), "hash", "listpack"},
		{key(uid, gen, "interests"), "set", ""},
		{key(uid, gen, "orders"), "list", ""},
		{key(uid, gen, "invoices"), "list", ""},
		{key(uid, gen, "inquiries"), "list", ""},
	}
	for _, o := range p.Orders {
		wants = append(wants, keyWant{key(uid, gen, "order", o.ID), "hash", "listpack"})
	}
	for _, i := range p.Invoices {
		wants = append(wants, keyWant{key(uid, gen, "invoice", i.ID), "hash", "listpack"})
	}
	for _, q := range p.Inquiries {
		wants = append(wants, keyWant{key(uid, gen, "inquiry", q.ID), "hash", "listpack"})
	}
	for _, w := range wants {
		if got := e.str(t, "TYPE", w.key); got != w.typ {
			t.Errorf("TYPE %s = %q, want %q", w.key, got, w.typ)
		}
		if got := e.int(t, "PTTL", w.key); got <= 0 || got > ttl.Milliseconds() {
			t.Errorf("PTTL %s = %d, want in (0, %d]", w.key, got, ttl.Milliseconds())
		}
		if w.encoding != "" {
			if got := e.str(t, "OBJECT", "ENCODING", w.key); got != w.encoding {
				t.Errorf("OBJECT ENCODING %s = %q, want %q", w.key, got, w.encoding)
			}
		}
	}
	// Nothing else: the key count is exact.
	if got, want := len(e.userKeys(t, uid)), len(wants); got != want {
		t.Errorf("user has %d keys, want %d", got, want)
	}

	wantMeta := map[string]string{"gen": gen, "renewed": strconv.FormatInt(t0.UnixMilli(), 10),
		"loaded": strconv.FormatInt(t0.UnixMilli(), 10), "orders": "25", "invoices": "6", "inquiries": "3", "interests": "4"}
	for sec := range profile.NumSections {
		// Per section: its generation and load time (issue 12).
		wantMeta["g:"+sec.String()] = gen
		wantMeta["l:"+sec.String()] = strconv.FormatInt(t0.UnixMilli(), 10)
	}
	if got := e.strMap(t, "HGETALL", key(uid, "meta")); !reflect.DeepEqual(got, wantMeta) {
		t.Errorf("HGETALL meta = %v, want %v", got, wantMeta)
	}
	wantBasic := map[string]string{
		"id": uid.String(), "first_name": "Zoë A", "last_name": "Ångström A", "email": "zoe.A@example.com",
		"phone": "+46 8 123 A", "address_line": "Drottninggatan 1 A 🏠", "postal_code": "111 51",
		"city": "東京 A", "country": "SE", "marketing": "1", "created": p.Basic.Created.Format(time.RFC3339),
	}
	if got := e.strMap(t, "HGETALL", key(uid, gen, "basic")); !reflect.DeepEqual(got, wantBasic) {
		t.Errorf("HGETALL basic = %v, want %v", got, wantBasic)
	}
	o := p.Orders[7]
	wantOrder := map[string]string{"number": o.Number, "date": o.Date.Format(time.RFC3339),
		"status": o.Status, "total": strconv.FormatInt(int64(o.Total), 10), "currency": "EUR",
		"items": strconv.Itoa(o.ItemCount), "city": o.ShippingCity}
	if got := e.strMap(t, "HGETALL", key(uid, gen, "order", o.ID)); !reflect.DeepEqual(got, wantOrder) {
		t.Errorf("HGETALL order = %v, want %v", got, wantOrder)
	}
	i := p.Invoices[1]
	wantInvoice := map[string]string{"number": i.Number, "date": i.Date.Format(time.RFC3339),
		"amount": strconv.FormatInt(int64(i.Amount), 10), "currency": "SEK", "paid": "0"}
	if got := e.strMap(t, "HGETALL", key(uid, gen, "invoice", i.ID)); !reflect.DeepEqual(got, wantInvoice) {
		t.Errorf("HGETALL invoice = %v, want %v", got, wantInvoice)
	}
	q := p.Inquiries[1]
	wantInquiry := map[string]string{"closed": "1", "description": q.Description,
		"submitted": q.Submitted.Format(time.RFC3339), "email": q.SubmitterEmail, "name": q.SubmitterName}
	if got := e.strMap(t, "HGETALL", key(uid, gen, "inquiry", q.ID)); !reflect.DeepEqual(got, wantInquiry) {
		t.Errorf("HGETALL inquiry = %v, want %v", got, wantInquiry)
	}
	var wantIDs []string
	for _, o := range p.Orders {
		wantIDs = append(wantIDs, o.ID)
	}
	if got := e.strs(t, "LRANGE", key(uid, gen, "orders"), "0", "-1"); !slices.Equal(got, wantIDs) {
		t.Errorf("LRANGE orders = %v, want %v", got, wantIDs)
	}
	got := e.strs(t, "SMEMBERS", key(uid, gen, "interests"))
	slices.Sort(got)
	want := slices.Sorted(slices.Values(p.Interests))
	if !slices.Equal(got, want) {
		t.Errorf("SMEMBERS interests = %v, want %v", got, want)
	}
}

// Every key the store writes for a user carries the user's hash tag, checked
// over all keys of the server (not just the ones the tests know to expect).
func TestAllKeysCarryTheUsersHashTag(t *testing.T) { onTargets(t, testAllKeysCarryTheUsersHashTag) }

func testAllKeysCarryTheUsersHashTag(t *testing.T, e env) {
	ctx := context.Background()
	uid := uuid.New()
	ps := newProfileStore(e.client, redisrepo.ProfileOptions{})
	ts := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{})
	mustSave(t, ps, alice(uid))
	mustSave(t, ps, alice(uid)) // a replace, too
	if _, ok, err := ps.TryLock(ctx, uid, time.Minute); !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if err := ts.Create(ctx, profile.Session{ID: "sess1", UserID: uid}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := ts.PutData(ctx, uid, "sess1", "cart", []byte("x")); err != nil {
		t.Fatal(err)
	}

	all := redistest.Keys(t, e.raw, "*") // a test server: KEYS is fine here
	if len(all) < 40 {
		t.Fatalf("server holds %d keys, want the whole profile and session", len(all))
	}
	for _, k := range all {
		if !strings.HasPrefix(k, "pc:{u:"+uid.String()+"}:") {
			t.Errorf("key %q does not start with the user's hash tag", k)
		}
	}
	if got, want := len(e.userKeys(t, uid)), len(all); got != want {
		t.Errorf("SCAN MATCH found %d keys, KEYS %d", got, want)
	}
}

func TestReadRoundTrip(t *testing.T) { onTargets(t, testReadRoundTrip) }

func testReadRoundTrip(t *testing.T, e env) {
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	ctx := context.Background()

	uid := uuid.New()
	p := alice(uid)
	p.Basic.Created = time.Date(2020, 2, 29, 23, 59, 59, 123456789, time.FixedZone("CET", 3600))
	p.Interests = append(p.Interests, "ski A") // a duplicate: a set keeps one
	mustSave(t, s, p)

	// The second round of Read is served from the client-side cache.
	for round, rp := range append(readPaths(s), readPaths(s)...) {
		v, err := rp.read(ctx, uid, everything)
		if err != nil {
			t.Fatalf("round %d: %s: %v", round, rp.name, err)
		}
		if !v.Basic.Created.Equal(p.Basic.Created) {
			t.Errorf("Created = %v, want %v", v.Basic.Created, p.Basic.Created)
		}
		wantBasic := p.Basic
		wantBasic.Created = v.Basic.Created
		if v.Basic != wantBasic {
			t.Errorf("round %d: Basic = %+v, want %+v", round, v.Basic, wantBasic)
		}
		if got, want := v.Interests, []string{"jazz A", "ramen 🍜 A", "ski A", "Øl A"}; !slices.Equal(got, want) {
			t.Errorf("Interests = %q, want %q (sorted, no duplicates)", got, want)
		}
		checkSlice(t, "orders", v.Orders, p.Orders, 0, 25)
		checkSlice(t, "invoices", v.Invoices, p.Invoices, 0, 6)
		checkSlice(t, "inquiries", v.Inquiries, p.Inquiries, 0, 3)
	}

	// Byte-exact: compare the raw bytes of a few strings.
	v, err := s.Read(ctx, uid, profile.Query{Basic: true, Inquiries: page(0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ got, want string }{
		{v.Basic.FirstName, "Zo\u00eb A"},
		{v.Basic.LastName, "\u00c5ngstr\u00f6m A"},
		{v.Basic.City, "\u6771\u4eac A"},
		{v.Inquiries.Items[0].Description, "Paket kom inte fram \U0001F4E6 \u2014 \u00abA\u00bb"},
	} {
		if tt.got != tt.want {
			t.Errorf("got % x, want % x", tt.got, tt.want)
		}
	}
	// An empty query only checks that the profile is there.
	if v, err := s.Read(ctx, uid, profile.Query{}); err != nil || !reflect.DeepEqual(v, profile.View{}) {
		t.Errorf("Read(empty query) = %+v, %v; want a zero view", v, err)
	}
	if _, err := s.Read(ctx, uuid.New(), profile.Query{}); !errors.Is(err, profile.ErrNotFound) {
		t.Errorf("Read(unknown user, empty query) error = %v, want ErrNotFound", err)
	}
	// Parts not asked for stay empty.
	if v.Interests != nil || v.Orders.Items != nil || v.Orders.Total != 0 {
		t.Errorf("unrequested parts = %v, %+v; want zero", v.Interests, v.Orders)
	}
}

func TestReadEmptyProfile(t *testing.T) { onTargets(t, testReadEmptyProfile) }

func testReadEmptyProfile(t *testing.T, e env) {
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	uid := uuid.New()
	mustSave(t, s, bob(uid))

	// An empty section has no key at all: meta and basic only.
	gen := e.gen(t, uid)
	keys := e.userKeys(t, uid)
	slices.Sort(keys)
	if want := slices.Sorted(slices.Values([]string{key(uid, gen, "basic"), key(uid, "meta")})); !slices.Equal(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
	for round, rp := range append(readPaths(s), readPaths(s)...) {
		v, err := rp.read(context.Background(), uid, everything)
		if err != nil {
			t.Fatalf("round %d: %s: %v", round, rp.name, err)
		}
		if v.Basic != bob(uid).Basic {
			t.Errorf("Basic = %+v, want %+v", v.Basic, bob(uid).Basic)
		}
		if v.Interests == nil || len(v.Interests) != 0 {
			t.Errorf("Interests = %#v, want empty, not nil", v.Interests)
		}
		for name, sl := range map[string]struct{ n, total int }{
			"orders":    {len(v.Orders.Items), v.Orders.Total},
			"invoices":  {len(v.Invoices.Items), v.Invoices.Total},
			"inquiries": {len(v.Inquiries.Items), v.Inquiries.Total},
		} {
			if sl.n != 0 || sl.total != 0 {
				t.Errorf("%s: %d items of %d, want 0 of 0", name, sl.n, sl.total)
			}
		}
		if v.Orders.Items == nil {
			t.Error("Orders.Items is nil, want empty")
		}
	}
}

func TestReadPaging(t *testing.T) { onTargets(t, testReadPaging) }

func testReadPaging(t *testing.T, e env) {
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	uid := uuid.New()
	p := richProfile(uid, "P", 45, 0, 0)
	mustSave(t, s, p)

	tests := []struct {
		name          string
		offset, limit int
		wantFrom      int
		wantN         int
	}{
		{"first page", 0, 20, 0, 20},
		{"middle page", 20, 20, 20, 20},
		{"last partial page", 40, 20, 40, 5},
		{"exactly the end", 45, 20, 45, 0},
		{"beyond the end", 1000, 20, 0, 0},
		{"one item", 44, 1, 44, 1},
		{"max limit", 0, profile.MaxLimit, 0, 45},
		{"odd window", 7, 3, 7, 3},
		{"offset at MaxInt", math.MaxInt, 20, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for round, rp := range append(readPaths(s), readPaths(s)...) {
				v, err := rp.read(context.Background(), uid, profile.Query{Orders: page(tt.offset, tt.limit), Invoices: page(0, 10)})
				if err != nil {
					t.Fatalf("round %d: %s: %v", round, rp.name, err)
				}
				checkSlice(t, "orders", v.Orders, p.Orders, tt.wantFrom, tt.wantN)
				if v.Invoices.Total != 0 || len(v.Invoices.Items) != 0 {
					t.Errorf("invoices = %+v, want empty", v.Invoices)
				}
			}
		})
	}
}

func TestReadInvalidPage(t *testing.T) { onTargets(t, testReadInvalidPage) }

func testReadInvalidPage(t *testing.T, e env) {
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	uid := uuid.New()
	mustSave(t, s, alice(uid))
	bad := []*profile.Page{page(-1, 20), page(0, 0), page(0, -5), page(0, profile.MaxLimit+1)}
	for _, pg := range bad {
		for _, q := range []profile.Query{{Orders: pg}, {Invoices: pg}, {Inquiries: pg}} {
			if _, err := s.Read(context.Background(), uid, q); !errors.Is(err, profile.ErrInvalidPage) {
				t.Errorf("Read(%+v) error = %v, want ErrInvalidPage", *pg, err)
			}
		}
	}
	// Validation comes before the lookup: a bad page for an unknown user is still a bad page.
	if _, err := s.Read(context.Background(), uuid.New(), profile.Query{Orders: page(0, 0)}); !errors.Is(err, profile.ErrInvalidPage) {
		t.Errorf("Read(unknown user, bad page) error = %v, want ErrInvalidPage", err)
	}
}

func TestReadNeverSaved(t *testing.T) { onTargets(t, testReadNeverSaved) }

func testReadNeverSaved(t *testing.T, e env) {
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	uid := uuid.New()
	for round, rp := range append(readPaths(s), readPaths(s)...) {
		if _, err := rp.read(context.Background(), uid, everything); !errors.Is(err, profile.ErrNotFound) {
			t.Fatalf("round %d: %s error = %v, want ErrNotFound", round, rp.name, err)
		}
	}
}

// A save right after a read that cached "no profile" must be visible to the
// same client at once, although its own invalidation may lag.
func TestReadAfterOwnSave(t *testing.T) { onTargets(t, testReadAfterOwnSave) }

func testReadAfterOwnSave(t *testing.T, e env) {
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	for range 200 {
		uid := uuid.New()
		if _, err := s.Read(context.Background(), uid, everything); !errors.Is(err, profile.ErrNotFound) {
			t.Fatalf("Read before Save error = %v, want ErrNotFound", err)
		}
		mustSave(t, s, bob(uid))
		if _, err := s.Read(context.Background(), uid, everything); err != nil {
			t.Fatalf("Read right after Save: %v", err)
		}
	}
}

func TestReplaceLeavesNoOrphans(t *testing.T) { onTargets(t, testReplaceLeavesNoOrphans) }

func testReplaceLeavesNoOrphans(t *testing.T, e env) {
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	uid := uuid.New()
	a, b := richProfile(uid, "A", 250, 30, 7), richProfile(uid, "B", 3, 0, 1)
	// keys: meta, basic, interests, 3 lists when non-empty, one hash per item.
	wantA := 1 + 1 + 1 + 3 + 250 + 30 + 7
	wantB := 1 + 1 + 1 + 2 + 3 + 1

	mustSave(t, s, a)
	genA := e.gen(t, uid)
	if got := len(e.userKeys(t, uid)); got != wantA {
		t.Fatalf("after save A: %d keys, want %d", got, wantA)
	}
	mustSave(t, s, b)
	if got := e.gen(t, uid); got == genA {
		t.Fatalf("gen after replace = %q, the same as before", got)
	}
	keys := e.userKeys(t, uid)
	if got := len(keys); got != wantB {
		t.Errorf("after save B: %d keys, want %d: %v", got, wantB, keys)
	}
	for _, k := range keys {
		if strings.Contains(k, genA) {
			t.Errorf("key %s of the old generation survived", k)
		}
	}
	mustSave(t, s, a)
	if got := len(e.userKeys(t, uid)); got != wantA {
		t.Errorf("after save A again: %d keys, want %d", got, wantA)
	}

	if err := s.Delete(context.Background(), uid); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if keys := e.userKeys(t, uid); len(keys) != 0 {
		t.Errorf("after Delete: keys %v, want none", keys)
	}
	if _, err := s.Read(context.Background(), uid, everything); !errors.Is(err, profile.ErrNotFound) {
		t.Errorf("Read after Delete error = %v, want ErrNotFound", err)
	}
	if err := s.Delete(context.Background(), uid); err != nil {
		t.Errorf("Delete of a missing profile: %v, want nil", err)
	}
}

// Keys removed behind the store's back (eviction, expiry, an operator)
// make the read not found, never partial, never a panic.
func TestReadMissingOrCorruptKeys(t *testing.T) { onTargets(t, testReadMissingOrCorruptKeys) }

func testReadMissingOrCorruptKeys(t *testing.T, e env) {
	tests := []struct {
		name   string
		damage func(t *testing.T, e env, uid uuid.UUID, gen string)
		q      profile.Query
	}{
		{"meta gone", func(t *testing.T, e env, uid uuid.UUID, gen string) {
			e.do(t, "DEL", key(uid, "meta"))
		}, everything},
		{"basic gone", func(t *testing.T, e env, uid uuid.UUID, gen string) {
			e.do(t, "DEL", key(uid, gen, "basic"))
		}, profile.Query{Basic: true}},
		{"interests gone", func(t *testing.T, e env, uid uuid.UUID, gen string) {
			e.do(t, "DEL", key(uid, gen, "interests"))
		}, profile.Query{Interests: true}},
		{"order list gone", func(t *testing.T, e env, uid uuid.UUID, gen string) {
			e.do(t, "DEL", key(uid, gen, "orders"))
		}, profile.Query{Orders: page(0, 20)}},
		{"order on the page gone", func(t *testing.T, e env, uid uuid.UUID, gen string) {
			e.do(t, "DEL", key(uid, gen, "order", "A-o00003"))
		}, profile.Query{Basic: true, Orders: page(0, 20)}},
		{"invoice gone", func(t *testing.T, e env, uid uuid.UUID, gen string) {
			e.do(t, "DEL", key(uid, gen, "invoice", "A-i0005"))
		}, profile.Query{Invoices: page(5, 20)}},
		{"inquiry gone", func(t *testing.T, e env, uid uuid.UUID, gen string) {
			e.do(t, "DEL", key(uid, gen, "inquiry", "A-q000"))
		}, profile.Query{Inquiries: page(0, 1)}},
		{"order garbage", func(t *testing.T, e env, uid uuid.UUID, gen string) {
			e.do(t, "HSET", key(uid, gen, "order", "A-o00003"), "total", "a lot")
		}, profile.Query{Orders: page(0, 20)}},
		{"order missing a field", func(t *testing.T, e env, uid uuid.UUID, gen string) {
			e.do(t, "HDEL", key(uid, gen, "order", "A-o00003"), "date")
		}, profile.Query{Orders: page(0, 20)}},
		{"basic of another user", func(t *testing.T, e env, uid uuid.UUID, gen string) {
			e.do(t, "HSET", key(uid, gen, "basic"), "id", uuid.NewString())
		}, profile.Query{Basic: true}},
		{"meta garbage", func(t *testing.T, e env, uid uuid.UUID, gen string) {
			e.do(t, "HSET", key(uid, "meta"), "orders", "many")
		}, profile.Query{Basic: true}},
		{"order list shorter than meta says", func(t *testing.T, e env, uid uuid.UUID, gen string) {
			e.do(t, "LTRIM", key(uid, gen, "orders"), "0", "9")
		}, profile.Query{Orders: page(0, 20)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newProfileStore(e.client, redisrepo.ProfileOptions{})
			uid := uuid.New()
			mustSave(t, s, alice(uid))
			if _, err := s.Read(context.Background(), uid, tt.q); err != nil { // warm the cache
				t.Fatalf("Read before: %v", err)
			}
			tt.damage(t, e, uid, e.gen(t, uid))
			// Invalidation is asynchronous: the cached view may live on briefly.
			eventually(t, "Read returns ErrNotFound", func() bool {
				v, err := s.Read(context.Background(), uid, tt.q)
				if err != nil && !errors.Is(err, profile.ErrNotFound) {
					t.Fatalf("Read error = %v, want ErrNotFound", err)
				}
				if err == nil && !reflect.DeepEqual(v.Basic, alice(uid).Basic) && tt.q.Basic {
					t.Fatalf("Read returned a broken view: %+v", v.Basic)
				}
				return err != nil
			})
			if _, err := s.ReadConsistent(context.Background(), uid, tt.q); !errors.Is(err, profile.ErrNotFound) {
				t.Errorf("fallback read error = %v, want ErrNotFound", err)
			}
		})
	}

	// A foreign key in meta's place is no cache miss: a reload could not
	// overwrite it, so it is a plain error for an operator, not ErrNotFound.
	t.Run("meta of the wrong type", func(t *testing.T) {
		s := newProfileStore(e.client, redisrepo.ProfileOptions{})
		uid := uuid.New()
		e.do(t, "SET", key(uid, "meta"), "x")
		_, err := s.Read(context.Background(), uid, everything)
		if err == nil || errors.Is(err, profile.ErrNotFound) {
			t.Errorf("Read error = %v, want a WRONGTYPE error", err)
		}
	})

	// Damage the store does not need for a query does not matter to it.
	t.Run("order off the page gone", func(t *testing.T) {
		s := newProfileStore(e.client, redisrepo.ProfileOptions{})
		uid := uuid.New()
		mustSave(t, s, alice(uid))
		e.do(t, "DEL", key(uid, e.gen(t, uid), "order", "A-o00024"))
		if _, err := s.Read(context.Background(), uid, profile.Query{Orders: page(0, 20)}); err != nil {
			t.Errorf("Read of page 1: %v, want it to work", err)
		}
	})
}

func TestSaveRejects(t *testing.T) { onTargets(t, testSaveRejects) }

func testSaveRejects(t *testing.T, e env) {
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	uid := uuid.New()
	noOrderID := alice(uid)
	noOrderID.Orders[3].ID = ""
	for name, p := range map[string]*profile.Profile{
		"nil":         nil,
		"no user id":  {Basic: profile.Basic{FirstName: "x"}},
		"no order id": noOrderID,
	} {
		if err := s.Save(context.Background(), p, ""); err == nil {
			t.Errorf("Save(%s) = nil, want an error", name)
		}
	}
	if keys := e.userKeys(t, uid); len(keys) != 0 {
		t.Errorf("a rejected save left keys %v", keys)
	}
}

type readFunc func(context.Context, uuid.UUID, profile.Query) (profile.View, error)

// readPaths are Read (mostly its cached fast path) and its consistent
// fallback alone: both must give the same answers.
func readPaths(s *redisrepo.ProfileStore) []struct {
	name string
	read readFunc
} {
	return []struct {
		name string
		read readFunc
	}{{"Read", s.Read}, {"fallback", s.ReadConsistent}}
}

func checkSlice[T any](t *testing.T, name string, got profile.Slice[T], all []T, from, n int) {
	t.Helper()
	if got.Total != len(all) {
		t.Errorf("%s total = %d, want %d", name, got.Total, len(all))
	}
	if len(got.Items) != n {
		t.Fatalf("%s: %d items, want %d", name, len(got.Items), n)
	}
	for i, it := range got.Items {
		if want := all[from+i]; !reflect.DeepEqual(it, want) {
			t.Errorf("%s[%d] = %+v, want %+v", name, from+i, it, want)
		}
	}
}
