package session_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/sessiontest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/session"
)

func newValidator(t *testing.T, mod func(*session.Config)) *session.Validator {
	t.Helper()
	cfg := session.Config{RedisURL: sessiontest.RedisURL(), Secret: []byte(sessiontest.Secret),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	v, err := session.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func mustSignIn(t *testing.T, email, password string) sessiontest.Login {
	t.Helper()
	l, err := sessiontest.SignIn(email, password)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// eventually polls cond for up to 2s: Redis invalidates another client's
// cached session asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestValidate(t *testing.T) {
	v := newValidator(t, nil)
	alice := mustSignIn(t, "alice@example.com", "alice-secret")
	other := newValidator(t, func(c *session.Config) { c.Secret = []byte("another-secret-0123456789abcdefghij") })
	for _, tc := range []struct {
		name   string
		v      *session.Validator
		header map[string]string
		cookie *http.Cookie
		want   error // nil: alice's identity
	}{
		{name: "cookie", v: v, cookie: &http.Cookie{Name: "pc_session", Value: alice.Token}},
		{name: "bearer", v: v, header: map[string]string{"Authorization": "Bearer " + alice.Token}},
		{name: "bearer wins over a cookie", v: v, header: map[string]string{"Authorization": "Bearer x"},
			cookie: &http.Cookie{Name: "pc_session", Value: alice.Token}, want: session.ErrUnauthenticated},
		{name: "nothing", v: v, want: session.ErrUnauthenticated},
		{name: "garbage", v: v, cookie: &http.Cookie{Name: "pc_session", Value: "not.a.jwt"}, want: session.ErrUnauthenticated},
		{name: "another secret", v: other, cookie: &http.Cookie{Name: "pc_session", Value: alice.Token}, want: session.ErrUnauthenticated},
		// Over HTTPS only the __Host- cookie counts, as on profilecache.
		{name: "plain cookie on a secure site", v: newValidator(t, func(c *session.Config) { c.CookieSecure = true }),
			cookie: &http.Cookie{Name: "pc_session", Value: alice.Token}, want: session.ErrUnauthenticated},
		{name: "__Host- cookie on a secure site", v: newValidator(t, func(c *session.Config) { c.CookieSecure = true }),
			cookie: &http.Cookie{Name: "__Host-pc_session", Value: alice.Token}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			for k, val := range tc.header {
				req.Header.Set(k, val)
			}
			if tc.cookie != nil {
				req.AddCookie(tc.cookie)
			}
			id, err := tc.v.Validate(t.Context(), req)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Validate = %+v, %v; want %v", id, err, tc.want)
				}
				return
			}
			if err != nil || id != (session.Identity{UserID: alice.UserID, SessionID: alice.SessionID}) {
				t.Fatalf("Validate = %+v, %v; want alice's session", id, err)
			}
		})
	}
}

// TestLogoutEndsTheSessionHere: a logout, and a logout-all, made by
// profilecache (another Redis client) end the session for the validator,
// although it had the session in its client-side cache.
func TestLogoutEndsTheSessionHere(t *testing.T) {
	v := newValidator(t, nil)
	valid := func(l sessiontest.Login) bool {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+l.Token)
		_, err := v.Validate(t.Context(), req)
		if err != nil && !errors.Is(err, session.ErrUnauthenticated) {
			t.Fatalf("Validate: %v, want nil or ErrUnauthenticated", err)
		}
		return err == nil
	}
	a, b, c := mustSignIn(t, "bob@example.com", "bob-secret"), mustSignIn(t, "bob@example.com", "bob-secret"), mustSignIn(t, "bob@example.com", "bob-secret")
	for _, l := range []sessiontest.Login{a, b, c, a, b, c} { // the second round is served from the cache
		if !valid(l) {
			t.Fatal("a fresh session is refused")
		}
	}
	if err := sessiontest.SignOut(a); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the logged-out session is refused", func() bool { return !valid(a) })
	if !valid(b) {
		t.Fatal("a logout ended another session too")
	}
	if err := sessiontest.SignOutAll(b); err != nil {
		t.Fatal(err)
	}
	for _, l := range []sessiontest.Login{b, c} {
		eventually(t, "every session is refused after logout-all", func() bool { return !valid(l) })
	}
}

// TestMiddleware: 401 JSON without a session, the identity in the context
// with one, and Config.OnError replaces the answer.
func TestMiddleware(t *testing.T) {
	alice := mustSignIn(t, "alice@example.com", "alice-secret")
	var got session.Identity
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = session.FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
	teapot := func(w http.ResponseWriter, _ *http.Request, err error) {
		if errors.Is(err, session.ErrUnauthenticated) {
			w.WriteHeader(http.StatusTeapot)
		}
	}
	for _, tc := range []struct {
		name       string
		onError    func(http.ResponseWriter, *http.Request, error)
		token      string
		wantStatus int
		wantBody   string
	}{
		{name: "signed in", token: alice.Token, wantStatus: http.StatusNoContent},
		{name: "anonymous", wantStatus: http.StatusUnauthorized, wantBody: `{"error":"authentication required"}` + "\n"},
		{name: "own error handler", onError: teapot, wantStatus: http.StatusTeapot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = session.Identity{}
			h := newValidator(t, func(c *session.Config) { c.OnError = tc.onError }).Middleware(next)
			req := httptest.NewRequest("GET", "/", nil)
			if tc.token != "" {
				req.AddCookie(&http.Cookie{Name: "pc_session", Value: tc.token})
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus || (tc.wantBody != "" && rec.Body.String() != tc.wantBody) {
				t.Fatalf("%d %q, want %d %q", rec.Code, rec.Body, tc.wantStatus, tc.wantBody)
			}
			if want := (tc.token != ""); (got.UserID == alice.UserID) != want {
				t.Errorf("identity in the context %+v, want alice's: %v", got, want)
			}
			if vary := rec.Header().Values("Vary"); !slices.Contains(vary, "Cookie") {
				t.Errorf("Vary %q, want Cookie", vary)
			}
		})
	}
}

// counter counts the round trips a client makes: every Do and DoMulti,
// and the cached reads that miss.
type counter struct {
	rueidis.Client
	mu    sync.Mutex
	trips int
}

func (c *counter) add() { c.mu.Lock(); c.trips++; c.mu.Unlock() }
func (c *counter) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.trips
	c.trips = 0
	return n
}

func (c *counter) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.add()
	return c.Client.Do(ctx, cmd)
}

func (c *counter) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	c.add()
	return c.Client.DoMulti(ctx, cmds...)
}

func (c *counter) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	r := c.Client.DoCache(ctx, cmd, ttl)
	if !r.IsCacheHit() {
		c.add()
	}
	return r
}

func (c *counter) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	rs := c.Client.DoMultiCache(ctx, multi...)
	for _, r := range rs {
		if !r.IsCacheHit() {
			c.add()
			break
		}
	}
	return rs
}

// TestHotCheckCostsNoRoundTrip: once warm, validating a session and
// reading its basic data and a page of orders make no round trip to Redis,
// as profilecache's own hot /api/me.
func TestHotCheckCostsNoRoundTrip(t *testing.T) {
	raw, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{sessiontest.RedisURL()[len("redis://"):]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(raw.Close)
	c := &counter{Client: raw}
	v := newValidator(t, func(cfg *session.Config) { cfg.RedisURL, cfg.Redis = "", c })
	alice := mustSignIn(t, "alice@example.com", "alice-secret")
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: "pc_session", Value: alice.Token})
	check := func() {
		id, err := v.Validate(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Read(t.Context(), id.UserID, profile.Query{Basic: true, Orders: &profile.Page{Limit: 20}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		check()
	}
	c.take()
	for range 10 {
		check()
	}
	if n := c.take(); n != 0 {
		t.Errorf("10 hot checks made %d round trips, want 0", n)
	}
}
