package redisrepo_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// ms truncates to what the store keeps: unix milliseconds.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()) }

func newSession(uid uuid.UUID, id string, created time.Time) profile.Session {
	return profile.Session{ID: id, UserID: uid, Created: ms(created), LastSeen: ms(created), UserAgent: "Mozilla/5.0 (Zoë's 📱)"}
}

func mustCreate(t testing.TB, s *redisrepo.TokenStore, sess profile.Session, ttl time.Duration) {
	t.Helper()
	if err := s.Create(context.Background(), sess, ttl); err != nil {
		t.Fatalf("Create: %v", err)
	}
}

func wantNotFound(t testing.TB, what string, err error) {
	t.Helper()
	if !errors.Is(err, profile.ErrNotFound) {
		t.Errorf("%s: error = %v, want ErrNotFound", what, err)
	}
}

func TestCreateLayout(t *testing.T) { onTargets(t, testCreateLayout) }

func testCreateLayout(t *testing.T, e env) {
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{})
	uid := uuid.New()
	now := time.Now()
	sess := newSession(uid, "aGFzaGVkLXRva2Vu", now)
	sess.LastSeen = ms(now.Add(time.Second))
	mustCreate(t, s, sess, 20*time.Minute)

	tok, idx := key(uid, "s", sess.ID), key(uid, "sessions")
	want := map[string]string{"uid": uid.String(), "created": strconv.FormatInt(sess.Created.UnixMilli(), 10),
		"seen": strconv.FormatInt(sess.LastSeen.UnixMilli(), 10), "ua": sess.UserAgent}
	if got := e.strMap(t, "HGETALL", tok); !reflect.DeepEqual(got, want) {
		t.Errorf("HGETALL token = %v, want %v", got, want)
	}
	if got := e.str(t, "OBJECT", "ENCODING", tok); got != "listpack" {
		t.Errorf("OBJECT ENCODING token = %q, want listpack", got)
	}
	if got := e.int(t, "PTTL", tok); got <= 0 || got > (20*time.Minute).Milliseconds() {
		t.Errorf("PTTL token = %d, want in (0, 20m]", got)
	}
	if got := e.str(t, "TYPE", idx); got != "zset" {
		t.Errorf("TYPE index = %q, want zset", got)
	}
	if got := e.str(t, "ZSCORE", idx, sess.ID); got != want["created"] {
		t.Errorf("ZSCORE index = %s, want created %s", got, want["created"])
	}
	if got := e.int(t, "PTTL", idx); got <= (11*time.Hour).Milliseconds() || got > (12*time.Hour).Milliseconds() {
		t.Errorf("PTTL index = %d, want about the 12h max age", got)
	}

	got, err := s.Lookup(context.Background(), uid, sess.ID)
	if err != nil || got != sess {
		t.Errorf("Lookup = %+v, %v; want %+v", got, err, sess)
	}
}

func TestLookup(t *testing.T) { onTargets(t, testLookup) }

func testLookup(t *testing.T, e env) {
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{})
	ctx := context.Background()
	uid := uuid.New()
	sess := newSession(uid, "s1", time.Now())
	mustCreate(t, s, sess, time.Minute)

	for round := range 3 { // later rounds come from the client-side cache
		if got, err := s.Lookup(ctx, uid, "s1"); err != nil || got != sess {
			t.Fatalf("round %d: Lookup = %+v, %v; want %+v", round, got, err, sess)
		}
	}
	_, err := s.Lookup(ctx, uid, "nope")
	wantNotFound(t, "Lookup of an unknown session", err)
	_, err = s.Lookup(ctx, uuid.New(), "s1")
	wantNotFound(t, "Lookup under another user", err)

	// A token hash naming another user (planted, or corrupt) is not a session.
	e.do(t, "HSET", key(uid, "s", "s1"), "uid", uuid.NewString())
	eventually(t, "Lookup of a foreign token is not found", func() bool {
		_, err := s.Lookup(ctx, uid, "s1")
		return errors.Is(err, profile.ErrNotFound)
	})
	e.do(t, "HSET", key(uid, "s", "s1"), "uid", uid.String(), "created", "garbage")
	eventually(t, "Lookup of a corrupt token is not found", func() bool {
		_, err := s.Lookup(ctx, uid, "s1")
		return errors.Is(err, profile.ErrNotFound)
	})
}

// SESSION_MAX_AGE: a session older than IndexTTL is dead however active,
// and Create prunes such sessions from the index.
func TestSessionMaxAge(t *testing.T) { onTargets(t, testSessionMaxAge) }

func testSessionMaxAge(t *testing.T, e env) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{IndexTTL: time.Hour, Now: clock})
	ctx := context.Background()
	uid := uuid.New()
	mustCreate(t, s, newSession(uid, "old", now), 24*time.Hour)

	mu.Lock()
	now = now.Add(time.Hour + time.Second)
	mu.Unlock()
	_, err := s.Lookup(ctx, uid, "old")
	wantNotFound(t, "Lookup past the max age", err)

	mustCreate(t, s, newSession(uid, "new", clock()), time.Hour)
	if got := e.strs(t, "ZRANGE", key(uid, "sessions"), "0", "-1"); !slices.Equal(got, []string{"new"}) {
		t.Errorf("index after Create = %v, want only the new session", got)
	}
	list, err := s.List(ctx, uid)
	if err != nil || len(list) != 1 || list[0].ID != "new" {
		t.Errorf("List = %+v, %v; want the new session only", list, err)
	}
}

func TestTouch(t *testing.T) { onTargets(t, testTouch) }

func testTouch(t *testing.T, e env) {
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{})
	ctx := context.Background()
	uid := uuid.New()
	now := time.Now()
	mustCreate(t, s, newSession(uid, "s1", now), 2*time.Second)
	if err := s.PutData(ctx, uid, "s1", "cart", []byte("3 apples")); err != nil {
		t.Fatal(err)
	}

	seen := ms(now.Add(42 * time.Second))
	if err := s.Touch(ctx, uid, "s1", seen, time.Hour); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	for _, k := range []string{key(uid, "s", "s1"), key(uid, "s", "s1", "data")} {
		if got := e.int(t, "PTTL", k); got <= 2000 || got > 3600_000 {
			t.Errorf("PTTL %s after Touch = %d, want slid to about 1h", k, got)
		}
	}
	if got, want := e.str(t, "HGET", key(uid, "s", "s1"), "seen"), strconv.FormatInt(seen.UnixMilli(), 10); got != want {
		t.Errorf("seen = %s, want %s", got, want)
	}
	eventually(t, "Lookup shows the new LastSeen", func() bool {
		got, err := s.Lookup(ctx, uid, "s1")
		return err == nil && got.LastSeen.Equal(seen)
	})

	// A gone session stays gone: no partial hash is recreated.
	wantNotFound(t, "Touch of an unknown session", s.Touch(ctx, uid, "nope", seen, time.Hour))
	if err := s.Revoke(ctx, uid, "s1"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, "Touch after Revoke", s.Touch(ctx, uid, "s1", seen, time.Hour))
	if keys := e.userKeys(t, uid); len(keys) != 0 {
		t.Errorf("keys after Revoke and Touch: %v, want none", keys)
	}
}

// Revocation is immediate on the revoking instance, although the client may
// read its own DEL back stale from its cache for a few ms (TECH-NOTES §2).
// The loop gives that window many chances. Another instance learns of it
// through invalidation.
func TestRevokeTakesEffectAtOnce(t *testing.T) { onTargets(t, testRevokeTakesEffectAtOnce) }

func testRevokeTakesEffectAtOnce(t *testing.T, e env) {
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{})
	otherInstance := redisrepo.NewTokenStore(e.srv.Client(t), redisrepo.TokenOptions{})
	ctx := context.Background()
	uid := uuid.New()
	now := time.Now()
	for i := range 1000 {
		id := fmt.Sprintf("sess-%04d", i)
		mustCreate(t, s, newSession(uid, id, now), time.Minute)
		if _, err := s.Lookup(ctx, uid, id); err != nil {
			t.Fatalf("Lookup %s before Revoke: %v", id, err)
		}
		checkOther := i%100 == 0
		if checkOther {
			eventually(t, "the other instance sees the session", func() bool {
				_, err := otherInstance.Lookup(ctx, uid, id)
				return err == nil
			})
		}
		if err := s.Revoke(ctx, uid, id); err != nil {
			t.Fatalf("Revoke %s: %v", id, err)
		}
		if _, err := s.Lookup(ctx, uid, id); !errors.Is(err, profile.ErrNotFound) {
			t.Fatalf("Lookup %s right after Revoke: %v, want ErrNotFound", id, err)
		}
		if checkOther {
			eventually(t, "the other instance sees the revocation", func() bool {
				_, err := otherInstance.Lookup(ctx, uid, id)
				return errors.Is(err, profile.ErrNotFound)
			})
		}
	}
	if keys := e.userKeys(t, uid); len(keys) != 0 {
		t.Errorf("keys after revoking every session: %d, want none", len(keys))
	}
	if err := s.Revoke(ctx, uid, "never-existed"); err != nil {
		t.Errorf("Revoke of a missing session: %v, want nil", err)
	}
}

func TestRevokeAll(t *testing.T) { onTargets(t, testRevokeAll) }

func testRevokeAll(t *testing.T, e env) {
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{})
	ctx := context.Background()
	uid, bystander := uuid.New(), uuid.New()
	now := time.Now()
	ids := []string{"s1", "s2", "s3", "expired"}
	for _, id := range ids {
		mustCreate(t, s, newSession(uid, id, now), time.Minute)
		if err := s.PutData(ctx, uid, id, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lookup(ctx, uid, id); err != nil { // cached now
			t.Fatal(err)
		}
	}
	mustCreate(t, s, newSession(bystander, "b1", now), time.Minute)
	e.do(t, "DEL", key(uid, "s", "expired"))

	n, err := s.RevokeAll(ctx, uid)
	if err != nil || n != 3 {
		t.Fatalf("RevokeAll = %d, %v; want 3 live sessions, nil", n, err)
	}
	for _, id := range ids {
		_, err := s.Lookup(ctx, uid, id)
		wantNotFound(t, "Lookup "+id+" right after RevokeAll", err)
	}
	// Only the fence remains, and only for its TTL (fence_test.go).
	if keys := e.userKeys(t, uid); !slices.Equal(keys, []string{key(uid, "fence")}) {
		t.Errorf("keys after RevokeAll: %v, want only the fence", keys)
	}
	if _, err := s.Lookup(ctx, bystander, "b1"); err != nil {
		t.Errorf("another user's session after RevokeAll: %v", err)
	}
	if n, err := s.RevokeAll(ctx, uid); n != 0 || err != nil {
		t.Errorf("second RevokeAll = %d, %v; want 0, nil", n, err)
	}
}

func TestList(t *testing.T) { onTargets(t, testList) }

func testList(t *testing.T, e env) {
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{})
	ctx := context.Background()
	uid := uuid.New()
	base := time.Now().Add(-time.Hour)

	if list, err := s.List(ctx, uid); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("List of no sessions = %#v, %v; want empty, nil", list, err)
	}
	var want []profile.Session
	for i, seenMin := range []int{10, 30, 20, 5, 25} {
		sess := newSession(uid, fmt.Sprintf("s%d", i), base.Add(time.Duration(i)*time.Minute))
		sess.LastSeen = ms(base.Add(time.Duration(seenMin) * time.Minute))
		mustCreate(t, s, sess, time.Hour)
		want = append(want, sess)
	}
	e.do(t, "DEL", key(uid, "s", "s4")) // expired
	if err := s.Revoke(ctx, uid, "s3"); err != nil {
		t.Fatal(err)
	}
	want = []profile.Session{want[1], want[2], want[0]} // seen 30, 20, 10

	got, err := s.List(ctx, uid)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List =\n%+v\nwant (most recently seen first)\n%+v", got, want)
	}
	if got := e.strs(t, "ZRANGE", key(uid, "sessions"), "0", "-1"); !slices.Equal(got, []string{"s0", "s1", "s2"}) {
		t.Errorf("index after List = %v, want the expired entry pruned", got)
	}
}

func TestSessionData(t *testing.T) { onTargets(t, testSessionData) }

func testSessionData(t *testing.T, e env) {
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{})
	ctx := context.Background()
	uid := uuid.New()
	mustCreate(t, s, newSession(uid, "s1", time.Now()), 10*time.Minute)

	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i) // NUL, invalid UTF-8, everything
	}
	values := map[string][]byte{
		"binary":    binary,
		"empty":     {},
		"text":      []byte("Zoë's cart 🛒"),
		"max value": make([]byte, profile.MaxDataValueBytes),
		"wizard:🧙":  []byte(`{"step":3}`),
	}
	for k, v := range values {
		if err := s.PutData(ctx, uid, "s1", k, v); err != nil {
			t.Fatalf("PutData(%q): %v", k, err)
		}
	}
	for k, v := range values {
		got, err := s.GetData(ctx, uid, "s1", k)
		if err != nil || !slices.Equal(got, v) {
			t.Errorf("GetData(%q) = %d bytes, %v; want the %d bytes put", k, len(got), err, len(v))
		}
	}
	// Overwrite, read your own write.
	for i := range 50 {
		v := []byte(strconv.Itoa(i))
		if err := s.PutData(ctx, uid, "s1", "step", v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetData(ctx, uid, "s1", "step"); err != nil || string(got) != string(v) {
			t.Fatalf("GetData after PutData(%s) = %q, %v", v, got, err)
		}
	}

	data, tok := key(uid, "s", "s1", "data"), key(uid, "s", "s1")
	if got := e.str(t, "TYPE", data); got != "hash" {
		t.Errorf("TYPE data = %q, want hash", got)
	}
	// Token first: by the time data is asked, its PTTL can only be lower
	// (+1 for rounding to milliseconds).
	if k, d := e.int(t, "PTTL", tok), e.int(t, "PTTL", data); d <= 0 || d > k+1 {
		t.Errorf("PTTL data = %d, token = %d; want the data to expire with the token", d, k)
	}

	_, err := s.GetData(ctx, uid, "s1", "nope")
	wantNotFound(t, "GetData of a missing key", err)
	if err := s.DeleteData(ctx, uid, "s1", "text"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetData(ctx, uid, "s1", "text")
	wantNotFound(t, "GetData after DeleteData", err)
	if err := s.DeleteData(ctx, uid, "s1", "text"); err != nil {
		t.Errorf("DeleteData of a missing key: %v, want nil", err)
	}

	wantNotFound(t, "PutData on an unknown session", s.PutData(ctx, uid, "nope", "k", []byte("v")))
	if got := e.int(t, "EXISTS", key(uid, "s", "nope", "data")); got != 0 {
		t.Error("PutData on an unknown session created its data key")
	}

	for name, put := range map[string]func() error{
		"empty key":       func() error { return s.PutData(ctx, uid, "s1", "", []byte("v")) },
		"key too long":    func() error { return s.PutData(ctx, uid, "s1", string(make([]byte, profile.MaxDataKeyBytes+1)), nil) },
		"value too large": func() error { return s.PutData(ctx, uid, "s1", "k", make([]byte, profile.MaxDataValueBytes+1)) },
	} {
		if err := put(); err == nil || errors.Is(err, profile.ErrNotFound) || errors.Is(err, profile.ErrDataFull) {
			t.Errorf("PutData(%s) = %v, want a plain error", name, err)
		}
	}

	if err := s.Revoke(ctx, uid, "s1"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetData(ctx, uid, "s1", "binary")
	wantNotFound(t, "GetData after Revoke", err)
	wantNotFound(t, "PutData after Revoke", s.PutData(ctx, uid, "s1", "k", []byte("v")))
}

func TestSessionDataFull(t *testing.T) { onTargets(t, testSessionDataFull) }

func testSessionDataFull(t *testing.T, e env) {
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{})
	ctx := context.Background()
	uid := uuid.New()
	mustCreate(t, s, newSession(uid, "s1", time.Now()), time.Minute)
	for i := range profile.MaxDataKeys {
		if err := s.PutData(ctx, uid, "s1", fmt.Sprintf("k%02d", i), []byte("v")); err != nil {
			t.Fatalf("PutData #%d: %v", i+1, err)
		}
	}
	if err := s.PutData(ctx, uid, "s1", "one-too-many", []byte("v")); !errors.Is(err, profile.ErrDataFull) {
		t.Errorf("PutData beyond %d keys = %v, want ErrDataFull", profile.MaxDataKeys, err)
	}
	if err := s.PutData(ctx, uid, "s1", "k07", []byte("new")); err != nil {
		t.Errorf("PutData overwriting a key of a full session = %v, want nil", err)
	}
	if err := s.DeleteData(ctx, uid, "s1", "k00"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutData(ctx, uid, "s1", "one-too-many", []byte("v")); err != nil {
		t.Errorf("PutData after freeing a key = %v, want nil", err)
	}
}

func TestCreateRejects(t *testing.T) { onTargets(t, testCreateRejects) }

func testCreateRejects(t *testing.T, e env) {
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{})
	uid := uuid.New()
	tests := []struct {
		name string
		sess profile.Session
		ttl  time.Duration
	}{
		{"no user", profile.Session{ID: "s1"}, time.Minute},
		{"no id", profile.Session{UserID: uid}, time.Minute},
		{"id naming another key", profile.Session{ID: "s1:data", UserID: uid}, time.Minute},
		{"no ttl", profile.Session{ID: "s1", UserID: uid}, 0},
	}
	for _, tt := range tests {
		if err := s.Create(context.Background(), tt.sess, tt.ttl); err == nil {
			t.Errorf("Create(%s) = nil, want an error", tt.name)
		}
	}
	if keys := e.userKeys(t, uid); len(keys) != 0 {
		t.Errorf("rejected creates left keys %v", keys)
	}
}
