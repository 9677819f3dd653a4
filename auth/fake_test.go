package auth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/internal/syncbuf"
	"github.com/profilecache/profilecache/profile"
)

var _ auth.TokenStore = (*fakeStore)(nil)

// errStoreDown stands for Redis not answering.
var errStoreDown = errors.New("fake store: connection refused")

// fakeStore is an in-memory TokenStore with idle expiry on an injected clock
// and per-method failure injection.
type fakeStore struct {
	now func() time.Time

	mu       sync.Mutex
	sessions map[string]fakeEntry // key(userID, sessionID)

	// Failure injection: a non-nil error is returned by that method.
	createErr, lookupErr, touchErr, revokeErr, revokeAllErr, listErr error

	touches  int
	lastTTL  time.Duration
	revoked  []string // session ids passed to Revoke
	lastSeen time.Time
}

type fakeEntry struct {
	s       profile.Session
	expires time.Time
}

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{now: now, sessions: make(map[string]fakeEntry)}
}

func fakeKey(userID uuid.UUID, sessionID string) string { return userID.String() + "/" + sessionID }

func (f *fakeStore) Create(_ context.Context, s profile.Session, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.createErr != nil {
		return f.createErr
	}
	f.sessions[fakeKey(s.UserID, s.ID)] = fakeEntry{s: s, expires: f.now().Add(ttl)}
	return nil
}

func (f *fakeStore) Lookup(_ context.Context, userID uuid.UUID, sessionID string) (profile.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookupErr != nil {
		return profile.Session{}, f.lookupErr
	}
	e, ok := f.get(userID, sessionID)
	if !ok {
		return profile.Session{}, fmt.Errorf("fake store: session: %w", profile.ErrNotFound)
	}
	return e.s, nil
}

// get returns a live entry; the caller holds mu.
func (f *fakeStore) get(userID uuid.UUID, sessionID string) (fakeEntry, bool) {
	k := fakeKey(userID, sessionID)
	e, ok := f.sessions[k]
	if ok && !f.now().Before(e.expires) {
		delete(f.sessions, k)
		return fakeEntry{}, false
	}
	return e, ok
}

func (f *fakeStore) Touch(_ context.Context, userID uuid.UUID, sessionID string, seen time.Time, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.touches++
	if f.touchErr != nil {
		return f.touchErr
	}
	e, ok := f.get(userID, sessionID)
	if !ok {
		return fmt.Errorf("fake store: touch: %w", profile.ErrNotFound)
	}
	e.s.LastSeen = seen
	e.expires = f.now().Add(ttl)
	f.sessions[fakeKey(userID, sessionID)] = e
	f.lastTTL, f.lastSeen = ttl, seen
	return nil
}

func (f *fakeStore) Revoke(_ context.Context, userID uuid.UUID, sessionID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, sessionID)
	if f.revokeErr != nil {
		return f.revokeErr
	}
	delete(f.sessions, fakeKey(userID, sessionID))
	return nil
}

func (f *fakeStore) RevokeAll(_ context.Context, userID uuid.UUID) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.revokeAllErr != nil {
		return 0, f.revokeAllErr
	}
	n := 0
	for k, e := range f.sessions {
		if e.s.UserID == userID {
			delete(f.sessions, k)
			n++
		}
	}
	return n, nil
}

func (f *fakeStore) List(_ context.Context, userID uuid.UUID) ([]profile.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []profile.Session
	for _, e := range f.sessions {
		if e.s.UserID == userID && f.now().Before(e.expires) {
			out = append(out, e.s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	return out, nil
}

// session returns the stored session, live or not, for assertions.
func (f *fakeStore) session(userID uuid.UUID, sessionID string) (profile.Session, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.sessions[fakeKey(userID, sessionID)]
	return e.s, ok
}

// edit changes a stored session in place.
func (f *fakeStore) edit(userID uuid.UUID, sessionID string, fn func(*profile.Session)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fakeKey(userID, sessionID)
	e := f.sessions[k]
	fn(&e.s)
	f.sessions[k] = e
}

func (f *fakeStore) touchCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.touches
}

func (f *fakeStore) setErr(p *error, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*p = err
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef-current")
	otherSecret = []byte("fedcba9876543210fedcba9876543210-previous")
)

// env is one Manager wired to a fake store and clock.
type env struct {
	m     *auth.Manager
	store *fakeStore
	clock *fakeClock
	logs  *syncbuf.Buffer
}

// newEnv builds an env; mod may adjust the config before New.
func newEnv(tb testing.TB, mod func(*auth.Config)) *env {
	tb.Helper()
	clock := newFakeClock()
	store := newFakeStore(clock.Now)
	logs := &syncbuf.Buffer{}
	cfg := auth.Config{
		Tokens:   store,
		Secret:   testSecret,
		TokenTTL: 20 * time.Minute,
		MaxAge:   12 * time.Hour,
		Now:      clock.Now,
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := auth.New(cfg)
	if err != nil {
		tb.Fatalf("auth.New: %v", err)
	}
	return &env{m: m, store: store, clock: clock, logs: logs}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
