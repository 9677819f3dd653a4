package redisrepo_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// Bounded memory per user: MaxSessions sessions, each with at most
// MaxDataBytes of data. The cap and the budget are enforced inside Redis
// (one Lua call each), so they hold across instances and under races.

// indexed returns the user's index members, sorted.
func (e env) indexed(t testing.TB, uid uuid.UUID) []string {
	t.Helper()
	ids := e.strs(t, "ZRANGE", key(uid, "sessions"), "0", "-1")
	slices.Sort(ids)
	return ids
}

// wantLive checks that exactly ids are the user's sessions in Redis: in the
// index, each with its token hash, and no other token or data key.
func (e env) wantLive(t testing.TB, uid uuid.UUID, ids ...string) {
	t.Helper()
	ids = slices.Sorted(slices.Values(ids))
	if got := e.indexed(t, uid); !slices.Equal(got, ids) {
		t.Errorf("index = %v, want %v", got, ids)
	}
	var tokens []string
	for _, k := range e.userKeys(t, uid) {
		rest, ok := strings.CutPrefix(k, key(uid, "s", ""))
		switch {
		case !ok:
		case strings.HasSuffix(rest, ":data"):
			if id := strings.TrimSuffix(rest, ":data"); !slices.Contains(ids, id) {
				t.Errorf("data key %s of ended session %s left behind", k, id)
			}
		default:
			tokens = append(tokens, rest)
		}
	}
	slices.Sort(tokens)
	if !slices.Equal(tokens, ids) {
		t.Errorf("token hashes of %v, want %v", tokens, ids)
	}
}

// The cap ends the least recently seen session (not the oldest created),
// ties going to the oldest created, and never the session being created.
// The ended session is refused at once on this instance and soon on others.
func TestSessionCap(t *testing.T) { onTargets(t, testSessionCap) }

func testSessionCap(t *testing.T, e env) {
	ctx := context.Background()
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{MaxSessions: 3})
	other := redisrepo.NewTokenStore(e.srv.Client(t), redisrepo.TokenOptions{MaxSessions: 3})
	uid, bystander := uuid.New(), uuid.New()
	base := time.Now().Add(-time.Hour)
	at := func(min int) time.Time { return ms(base.Add(time.Duration(min) * time.Minute)) }

	mustCreate(t, s, newSession(bystander, "b0", at(0)), time.Hour)
	for i, id := range []string{"s0", "s1", "s2"} {
		mustCreate(t, s, newSession(uid, id, at(i)), time.Hour)
		if err := s.PutData(ctx, uid, id, "cart", []byte(id)); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Lookup(ctx, uid, id); err != nil { // cached on the other instance
			t.Fatal(err)
		}
	}
	// s0 is the oldest but was active a moment ago; s1 has been idle longest.
	if err := s.Touch(ctx, uid, "s0", at(10), time.Hour); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newSession(uid, "s3", at(11)), time.Hour)
	e.wantLive(t, uid, "s0", "s2", "s3")
	if _, err := s.Lookup(ctx, uid, "s1"); !errors.Is(err, profile.ErrNotFound) {
		t.Errorf("Lookup of the ended session on this instance right away: %v, want ErrNotFound", err)
	}
	eventually(t, "the other instance refuses the ended session", func() bool {
		_, err := other.Lookup(ctx, uid, "s1")
		return errors.Is(err, profile.ErrNotFound)
	})
	for _, id := range []string{"s0", "s2", "s3"} {
		if _, err := s.Lookup(ctx, uid, id); err != nil {
			t.Errorf("Lookup %s, which should survive: %v", id, err)
		}
	}

	// A tie on last seen: the oldest created goes (s2 before s3).
	for _, id := range []string{"s0", "s2", "s3"} {
		if err := s.Touch(ctx, uid, id, at(20), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(t, s, newSession(uid, "s4", at(21)), time.Hour)
	e.wantLive(t, uid, "s2", "s3", "s4")
	_, err := s.Lookup(ctx, uid, "s0")
	wantNotFound(t, "Lookup of the oldest of tied sessions", err)

	// The new session survives even when its own clock says it is the
	// least recently seen (a lagging instance): the login must work.
	mustCreate(t, s, newSession(uid, "s5", at(1)), time.Hour)
	e.wantLive(t, uid, "s3", "s4", "s5")
	if _, err := s.Lookup(ctx, uid, "s5"); err != nil {
		t.Errorf("Lookup of the session just created: %v", err)
	}
	if list, err := s.List(ctx, uid); err != nil || len(list) != 3 {
		t.Errorf("List = %d sessions, %v; want 3", len(list), err)
	}

	// Other users are untouched.
	if _, err := s.Lookup(ctx, bystander, "b0"); err != nil {
		t.Errorf("another user's session: %v", err)
	}
}

// Entries whose session is gone (idle-expired) or too old (max age) are
// dropped by the next Create, with any keys left: they do not count
// against the cap, and the index holds no dead entries.
func TestCreatePrunesDeadEntries(t *testing.T) { onTargets(t, testCreatePrunesDeadEntries) }

func testCreatePrunesDeadEntries(t *testing.T, e env) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{MaxSessions: 3, IndexTTL: time.Hour, Now: clock})
	uid := uuid.New()

	mustCreate(t, s, newSession(uid, "aged", clock()), 24*time.Hour)
	if err := s.PutData(ctx, uid, "aged", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(30 * time.Minute)
	mu.Unlock()
	for _, id := range []string{"idle1", "idle2"} {
		mustCreate(t, s, newSession(uid, id, clock()), time.Hour)
		if err := s.PutData(ctx, uid, id, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	// Their idle TTL ran out; a data key may outlive its token by a moment.
	e.do(t, "DEL", key(uid, "s", "idle1"), key(uid, "s", "idle2"))
	mu.Lock()
	now = now.Add(31 * time.Minute) // "aged" is past the 1h max age, its keys still there
	mu.Unlock()
	if got := e.int(t, "EXISTS", key(uid, "s", "aged")); got != 1 {
		t.Fatal("test setup: the aged session's token should still exist")
	}

	mustCreate(t, s, newSession(uid, "new1", clock()), time.Hour)
	e.wantLive(t, uid, "new1")
	if keys := e.userKeys(t, uid); len(keys) != 2 { // index + new1's token
		t.Errorf("keys after Create = %v, want the index and the new token only", keys)
	}

	// Three live sessions fit a cap of three: nothing ends.
	mustCreate(t, s, newSession(uid, "new2", clock()), time.Hour)
	mustCreate(t, s, newSession(uid, "new3", clock()), time.Hour)
	e.wantLive(t, uid, "new1", "new2", "new3")
}

// Many logins of one user at once, through two instances: exactly the cap
// is left, all live, and the index has exactly those entries.
func TestSessionCapConcurrent(t *testing.T) { onTargets(t, testSessionCapConcurrent) }

func testSessionCapConcurrent(t *testing.T, e env) {
	const logins, maxSessions = 100, 20
	ctx := context.Background()
	stores := []*redisrepo.TokenStore{
		redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{MaxSessions: maxSessions}),
		redisrepo.NewTokenStore(e.srv.Client(t), redisrepo.TokenOptions{MaxSessions: maxSessions}),
	}
	uid := uuid.New()
	var wg sync.WaitGroup
	errs := make(chan error, logins)
	for i := range logins {
		wg.Go(func() {
			errs <- stores[i%2].Create(ctx, newSession(uid, fmt.Sprintf("c%03d", i), time.Now()), time.Hour)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	live := e.indexed(t, uid)
	if len(live) != maxSessions {
		t.Fatalf("%d sessions indexed after %d parallel logins, want %d", len(live), logins, maxSessions)
	}
	e.wantLive(t, uid, live...)
	n := 0
	for i := range logins {
		if _, err := stores[0].Lookup(ctx, uid, fmt.Sprintf("c%03d", i)); err == nil {
			n++
		}
	}
	if n != maxSessions {
		t.Errorf("%d sessions answer Lookup, want %d", n, maxSessions)
	}
}

// The data budget counts key and value bytes of every entry, the replaced
// entry at its new size; exactly at the budget is fine, one byte over is
// refused with nothing written.
func TestSessionDataBudget(t *testing.T) { onTargets(t, testSessionDataBudget) }

func testSessionDataBudget(t *testing.T, e env) {
	const budget = 1000
	ctx := context.Background()
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{MaxDataBytes: budget})
	uid := uuid.New()
	mustCreate(t, s, newSession(uid, "s1", time.Now()), time.Hour)
	data := key(uid, "s", "s1", "data")
	snapshot := func() map[string]string { return e.strMap(t, "HGETALL", data) }
	value := func(n int) []byte { return []byte(strings.Repeat("v", n)) }
	put := func(k string, n int) error { return s.PutData(ctx, uid, "s1", k, value(n)) }
	wantOver := func(what string, err error, before map[string]string) {
		t.Helper()
		var be *profile.DataBudgetError
		if !errors.Is(err, profile.ErrDataBudget) || !errors.As(err, &be) || be.Budget != budget {
			t.Errorf("%s: %v, want a DataBudgetError of %d bytes", what, err, budget)
		}
		if errors.Is(err, profile.ErrDataFull) || errors.Is(err, profile.ErrUnavailable) {
			t.Errorf("%s: %v is also another error", what, err)
		}
		if got := snapshot(); !maps.Equal(got, before) {
			t.Errorf("%s wrote something: data %d entries, want %d", what, len(got), len(before))
		}
	}

	// "a" + 599 = 600, "bb" + 398 = 400: exactly the budget.
	if err := put("a", 599); err != nil {
		t.Fatal(err)
	}
	if err := put("bb", 398); err != nil {
		t.Fatalf("a put reaching exactly the budget: %v", err)
	}
	full := snapshot()
	wantOver("a new key of one byte with an empty value", put("c", 0), full)
	wantOver("replacing a value with one byte more", put("bb", 399), full)

	// Replacing counts the new size, not old + new: shrink "a" by 100,
	// then a new entry of 100 bytes fits exactly.
	if err := put("a", 499); err != nil {
		t.Fatalf("shrinking a value: %v", err)
	}
	if err := put("a", 499); err != nil {
		t.Fatalf("replacing a value with one of the same size at the budget: %v", err)
	}
	if err := put("ccc", 97); err != nil {
		t.Fatalf("a new entry filling the freed bytes exactly: %v", err)
	}
	wantOver("growing a value after that", put("a", 500), snapshot())

	// Deleting frees the bytes at once.
	if err := s.DeleteData(ctx, uid, "s1", "bb"); err != nil {
		t.Fatal(err)
	}
	if err := put("dd", 398); err != nil {
		t.Fatalf("a put into deleted bytes: %v", err)
	}

	// One entry alone over the budget is refused before Redis is asked.
	fresh := snapshot()
	wantOver("one entry over the budget", put("k", budget), fresh)
	if v, err := s.GetData(ctx, uid, "s1", "a"); err != nil || len(v) != 499 {
		t.Errorf("GetData after refusals = %d bytes, %v; want the last stored 499", len(v), err)
	}
}

// The default budget is 256 KiB: four maximal values do not fit, and the
// key count limit still answers ErrDataFull, not a budget error.
func TestSessionDataBudgetDefault(t *testing.T) { onTargets(t, testSessionDataBudgetDefault) }

func testSessionDataBudgetDefault(t *testing.T, e env) {
	ctx := context.Background()
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{})
	uid := uuid.New()
	mustCreate(t, s, newSession(uid, "s1", time.Now()), time.Hour)
	maxValue := make([]byte, profile.MaxDataValueBytes)
	for _, k := range []string{"k1", "k2", "k3"} {
		if err := s.PutData(ctx, uid, "s1", k, maxValue); err != nil {
			t.Fatal(err)
		}
	}
	// 3 × (2 + 65536) used; 262144 - 196614 = 65530 left for key + value.
	if err := s.PutData(ctx, uid, "s1", "k4", maxValue); !errors.Is(err, profile.ErrDataBudget) {
		t.Errorf("a fourth 64 KiB value: %v, want ErrDataBudget", err)
	}
	if err := s.PutData(ctx, uid, "s1", "k4", maxValue[:65528]); err != nil {
		t.Errorf("the rest of the budget exactly: %v", err)
	}
	if err := s.PutData(ctx, uid, "s1", "k", nil); !errors.Is(err, profile.ErrDataBudget) {
		t.Errorf("one byte more: %v, want ErrDataBudget", err)
	}

	mustCreate(t, s, newSession(uid, "s2", time.Now()), time.Hour)
	for i := range profile.MaxDataKeys {
		if err := s.PutData(ctx, uid, "s2", fmt.Sprintf("k%02d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutData(ctx, uid, "s2", "one-too-many", nil); !errors.Is(err, profile.ErrDataFull) {
		t.Errorf("key %d: %v, want ErrDataFull", profile.MaxDataKeys+1, err)
	}
}

// Create is fenced like a profile save (fence.go): a login that began
// before a logout-all or an erasure creates no session and ends none.
func TestCreateFenced(t *testing.T) { onTargets(t, testCreateFenced) }

func testCreateFenced(t *testing.T, e env) {
	ctx := context.Background()
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{MaxSessions: 1, FenceTTL: time.Minute})
	uid := uuid.New()
	sess := func(id string, fence profile.Fence) profile.Session {
		p := newSession(uid, id, time.Now())
		p.Fence = fence
		return p
	}
	mustCreate(t, s, sess("before", ""), time.Hour)
	if _, err := s.RevokeAll(ctx, uid); err != nil {
		t.Fatal(err)
	}
	fence := profile.Fence(e.str(t, "GET", key(uid, "fence")))
	mustCreate(t, s, sess("after", fence), time.Hour) // began after the logout-all

	if err := s.Create(ctx, sess("in-flight", ""), time.Hour); !errors.Is(err, profile.ErrFenced) {
		t.Fatalf("Create that began before the logout-all = %v, want ErrFenced", err)
	}
	e.wantLive(t, uid, "after") // not written, and the cap of 1 ended nothing

	if err := s.Erase(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, sess("after-erasure", fence), time.Hour); !errors.Is(err, profile.ErrFenced) {
		t.Fatalf("Create after an erasure = %v, want ErrFenced", err)
	}
	if keys := e.userKeys(t, uid); !slices.Equal(keys, []string{key(uid, "fence")}) {
		t.Errorf("keys after a fenced Create = %v, want the fence only", keys)
	}
}

// The zero-setup embedded Redis runs the same scripts: the cap, the
// fence and the data budget hold there too.
func TestSessionLimitsOnEmbeddedRedis(t *testing.T) {
	c, stop, err := redisrepo.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	s := redisrepo.NewTokenStore(c, redisrepo.TokenOptions{MaxSessions: 2, MaxDataBytes: 10})
	uid := uuid.New()
	base := time.Now().Add(-time.Hour)
	for i, id := range []string{"s0", "s1"} {
		mustCreate(t, s, newSession(uid, id, base.Add(time.Duration(i)*time.Minute)), time.Hour)
	}
	if err := s.Touch(ctx, uid, "s0", ms(base.Add(10*time.Minute)), time.Hour); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newSession(uid, "s2", base.Add(11*time.Minute)), time.Hour)
	list, err := s.List(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range list {
		ids = append(ids, x.ID)
	}
	if slices.Sort(ids); !slices.Equal(ids, []string{"s0", "s2"}) {
		t.Errorf("sessions after a login beyond the cap = %v, want s0 and s2 (s1 least recently seen)", ids)
	}

	if err := s.PutData(ctx, uid, "s2", "ab", []byte("12345678")); err != nil {
		t.Fatalf("exactly the budget: %v", err)
	}
	if err := s.PutData(ctx, uid, "s2", "c", nil); !errors.Is(err, profile.ErrDataBudget) {
		t.Errorf("one byte over the budget: %v, want ErrDataBudget", err)
	}

	if _, err := s.RevokeAll(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, newSession(uid, "late", time.Now()), time.Hour); !errors.Is(err, profile.ErrFenced) {
		t.Errorf("Create under a fresh fence: %v, want ErrFenced", err)
	}
}
