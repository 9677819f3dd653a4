package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/web"
)

// memTokens is the least TokenStore the real auth.Manager needs: sessions
// in a map, no expiry of its own (the Manager's clock decides), and an
// outage switch.
type memTokens struct {
	mu   sync.Mutex
	m    map[string]profile.Session
	down bool
}

func (s *memTokens) Create(_ context.Context, ss profile.Session, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[ss.ID] = ss
	return nil
}

func (s *memTokens) Lookup(_ context.Context, userID uuid.UUID, id string) (profile.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return profile.Session{}, errBoom
	}
	ss, ok := s.m[id]
	if !ok || ss.UserID != userID {
		return profile.Session{}, fmt.Errorf("mem: %w", profile.ErrNotFound)
	}
	return ss, nil
}

func (s *memTokens) Touch(context.Context, uuid.UUID, string, time.Time, time.Duration) error {
	return nil
}

func (s *memTokens) Revoke(_ context.Context, _ uuid.UUID, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

func (s *memTokens) RevokeAll(context.Context, uuid.UUID) (int, error)          { return 0, nil }
func (s *memTokens) List(context.Context, uuid.UUID) ([]profile.Session, error) { return nil, nil }

// forwardAuthEnv is a test server with the real session manager on
// memTokens, and three of Zoë's sessions: live, revoked and expired.
func forwardAuthEnv(t *testing.T) (env *testEnv, tokens *memTokens, live, revoked, expired auth.Issued) {
	t.Helper()
	tokens = &memTokens{m: map[string]profile.Session{}}
	clock := day
	mgr, err := auth.New(auth.Config{Tokens: tokens, Secret: []byte("forward-auth-test-secret-0123456789"),
		Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	env = newTestEnv(t, func(c *web.Config) { c.Authenticate = mgr.Middleware() })
	issue := func() auth.Issued {
		iss, err := mgr.Issue(t.Context(), zoeID, "", "test")
		if err != nil {
			t.Fatal(err)
		}
		return iss
	}
	live, revoked = issue(), issue()
	if err := mgr.Revoke(t.Context(), zoeID, revoked.SessionID); err != nil {
		t.Fatal(err)
	}
	// A JWT that expired: issued 13h before the clock the Manager reads.
	clock = day.Add(-13 * time.Hour)
	expired = issue()
	clock = day
	return env, tokens, live, revoked, expired
}

// TestForwardAuth: /auth with the real session manager answers 200 and the
// identity headers for a live session (cookie or Bearer, any method, under
// /auth/ too, as Envoy asks), and 401 JSON, never a redirect, otherwise.
func TestForwardAuth(t *testing.T) {
	env, tokens, live, revoked, expired := forwardAuthEnv(t)
	cookie := func(tok string) map[string]string { return map[string]string{"Cookie": "pc_session=" + tok} }
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	for _, tc := range []struct {
		name   string
		method string
		path   string
		header map[string]string
		down   bool
		want   int
	}{
		{name: "cookie", path: "/auth", header: cookie(live.Token), want: 200},
		{name: "bearer", path: "/auth", header: bearer(live.Token), want: 200},
		{name: "head", method: "HEAD", path: "/auth", header: cookie(live.Token), want: 200},
		{name: "envoy path prefix", path: "/auth/app/orders?x=1", header: cookie(live.Token), want: 200},
		// Envoy keeps the upstream's method; /auth answers it even when a
		// browser says the POST is cross-site: that is the upstream's call.
		{name: "envoy cross-site POST", method: "POST", path: "/auth/app/orders",
			header: map[string]string{"Cookie": "pc_session=" + live.Token, "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, want: 200},
		{name: "anonymous", path: "/auth", want: 401},
		{name: "anonymous browser", path: "/auth", header: map[string]string{"Accept": "text/html"}, want: 401},
		{name: "garbage cookie", path: "/auth", header: cookie("not-a-jwt"), want: 401},
		{name: "garbage bearer", path: "/auth/x", header: bearer("a.b.c"), want: 401},
		{name: "revoked", path: "/auth", header: cookie(revoked.Token), want: 401},
		{name: "expired", path: "/auth", header: bearer(expired.Token), want: 401},
		{name: "session store down", path: "/auth", header: cookie(live.Token), down: true, want: 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tokens.mu.Lock()
			tokens.down = tc.down
			tokens.mu.Unlock()
			rec := env.do(t, request{method: tc.method, path: tc.path, header: tc.header})
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.want, rec.Body)
			}
			h := rec.Header()
			if tc.want != http.StatusOK {
				if tc.method != "HEAD" {
					errorBody(t, rec)
				}
				for _, k := range []string{web.HeaderUserID, web.HeaderSessionID, web.HeaderUserEmail} {
					if h.Get(k) != "" {
						t.Errorf("%s: %q on a %d", k, h.Get(k), rec.Code)
					}
				}
				return
			}
			want := map[string]string{web.HeaderUserID: zoeID.String(), web.HeaderSessionID: live.SessionID, web.HeaderUserEmail: zoeEmail,
				"Cache-Control": "no-store"}
			for k, v := range want {
				if h.Get(k) != v {
					t.Errorf("%s: %q, want %q", k, h.Get(k), v)
				}
			}
			if rec.Body.Len() != 0 || len(rec.Result().Cookies()) != 0 {
				t.Errorf("body %q, cookies %v: want neither", rec.Body, rec.Result().Cookies())
			}
		})
	}
}

// TestForwardAuthEmailHeader: an email that could split a header (CR, LF,
// other controls) or that a proxy would trim is sent empty (still sent, so
// that the proxy overwrites a client's own); the identity still passes. Non-ASCII addresses (RFC 6531) pass as they are.
func TestForwardAuthEmailHeader(t *testing.T) {
	for _, tc := range []struct {
		email, want string
	}{
		{"zoe@example.com", "zoe@example.com"},
		{"zoë@exämple.com", "zoë@exämple.com"},
		{"zoe@example.com\r\nX-User-Id: admin", ""},
		{"zoe@example.com\nX", ""},
		{"zoe\x00@example.com", ""},
		{" zoe@example.com", ""},
		{"zoe\u2028@example.com", ""},
		{strings.Repeat("a", 250) + "@b.cd", ""},
		{"", ""},
	} {
		t.Run(fmt.Sprintf("%q", tc.email), func(t *testing.T) {
			env := newTestEnv(t)
			env.profiles.profiles[zoeID].Basic.Email = tc.email
			rec := env.do(t, request{path: "/auth", user: zoeID})
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", rec.Code)
			}
			if got := rec.Header().Values(web.HeaderUserEmail); len(got) != 1 || got[0] != tc.want {
				t.Errorf("X-User-Email %q, want %q", got, tc.want)
			}
			if rec.Header().Get(web.HeaderUserID) != zoeID.String() {
				t.Errorf("X-User-Id %q, want %s", rec.Header().Get(web.HeaderUserID), zoeID)
			}
		})
	}
}
