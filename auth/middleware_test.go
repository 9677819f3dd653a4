package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/internal/syncbuf"
	"github.com/profilecache/profilecache/profile"
)

var (
	userA = uuid.MustParse("6f1c1f4e-8d2b-4a55-9a43-6a1f0d2a8b01")
	userB = uuid.MustParse("0b6a2a0e-5c8c-4d4e-b3f2-2f9d5e1c7a02")
)

// result is what one request through the middleware produced.
type result struct {
	err       error
	called    bool
	rec       *httptest.ResponseRecorder
	userID    uuid.UUID
	sessionID string
}

// serve runs req through the middleware with a handler that records the
// identity it sees.
func (e *env) serve(req *http.Request) result {
	rec := httptest.NewRecorder()
	c := echo.New().NewContext(req, rec)
	var r result
	h := e.m.Middleware()(func(c echo.Context) error {
		r.called = true
		r.userID, _ = auth.UserID(c)
		r.sessionID, _ = auth.SessionID(c)
		return c.NoContent(http.StatusOK)
	})
	r.err = h(c)
	r.rec = rec
	return r
}

func (e *env) issue(tb testing.TB, userID uuid.UUID) auth.Issued {
	tb.Helper()
	iss, err := e.m.Issue(tb.Context(), userID, "", "test-agent/1.0")
	if err != nil {
		tb.Fatalf("Issue: %v", err)
	}
	return iss
}

func cookieRequest(name, value string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
	req.AddCookie(&http.Cookie{Name: name, Value: value})
	return req
}

func bearerRequest(token string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// parseUnverified reads a JWT's header and claims without checking it.
func parseUnverified(tb testing.TB, token string) (map[string]any, auth.Claims) {
	tb.Helper()
	var claims auth.Claims
	t, _, err := jwt.NewParser().ParseUnverified(token, &claims)
	if err != nil {
		tb.Fatalf("ParseUnverified: %v", err)
	}
	return t.Header, claims
}

// forge signs claims with any method, key and extra header fields.
func forge(tb testing.TB, method jwt.SigningMethod, claims jwt.Claims, key any, header map[string]any) string {
	tb.Helper()
	t := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		t.Header[k] = v
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("SignedString: %v", err)
	}
	return s
}

// forgeRaw builds header.claims.HMAC-SHA256(secret) by hand, whatever alg
// the header declares (algorithm confusion).
func forgeRaw(tb testing.TB, header map[string]any, claims any, secret []byte) string {
	tb.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatalf("json: %v", err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// replaceSegment swaps one of the three JWT segments.
func replaceSegment(token string, i int, seg string) string {
	parts := strings.Split(token, ".")
	parts[i] = seg
	return strings.Join(parts, ".")
}

func TestMiddleware(t *testing.T) {
	// given builds the request from a fresh env in which userA holds iss,
	// whose header and claims are passed along for forging variants.
	type given func(t *testing.T, e *env, iss auth.Issued, hdr map[string]any, cl auth.Claims) *http.Request
	withClaims := func(mod func(*auth.Claims)) given {
		return func(t *testing.T, e *env, _ auth.Issued, hdr map[string]any, cl auth.Claims) *http.Request {
			mod(&cl)
			return cookieRequest(auth.DefaultCookieName, forge(t, jwt.SigningMethodHS256, cl, testSecret, map[string]any{"kid": hdr["kid"]}))
		}
	}
	tests := []struct {
		name        string
		given       given
		before      func(t *testing.T, e *env, iss auth.Issued)
		wantErr     error  // nil, auth.ErrUnauthenticated or profile.ErrUnavailable
		wantMsg     string // in the error: the reason, so a case cannot pass for the wrong one
		wantCleared bool
	}{
		{
			name: "valid cookie",
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				return cookieRequest(auth.DefaultCookieName, iss.Token)
			},
		},
		{
			name: "valid bearer",
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				return bearerRequest(iss.Token)
			},
		},
		{
			name: "bearer scheme is case-insensitive",
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
				req.Header.Set("Authorization", "bearer "+iss.Token)
				return req
			},
		},
		{
			name: "bearer wins over a bad cookie",
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				req := bearerRequest(iss.Token)
				req.AddCookie(&http.Cookie{Name: auth.DefaultCookieName, Value: "garbage"})
				return req
			},
		},
		{
			name: "bad bearer does not fall back to a good cookie",
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				req := bearerRequest("garbage")
				req.AddCookie(&http.Cookie{Name: auth.DefaultCookieName, Value: iss.Token})
				return req
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "malformed token",
		},
		{
			name: "no credential",
			given: func(*testing.T, *env, auth.Issued, map[string]any, auth.Claims) *http.Request {
				return httptest.NewRequest(http.MethodGet, "/api/me", nil)
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "no credential",
		},
		{
			name: "other cookie only",
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				return cookieRequest("other", iss.Token)
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "no credential",
		},
		{
			name: "empty cookie",
			given: func(*testing.T, *env, auth.Issued, map[string]any, auth.Claims) *http.Request {
				return cookieRequest(auth.DefaultCookieName, "")
			},
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "no credential",
			wantCleared: true,
		},
		{
			name: "garbage cookie",
			given: func(*testing.T, *env, auth.Issued, map[string]any, auth.Claims) *http.Request {
				return cookieRequest(auth.DefaultCookieName, "not-a-jwt")
			},
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "malformed token",
			wantCleared: true,
		},
		{
			name: "garbage bearer",
			given: func(*testing.T, *env, auth.Issued, map[string]any, auth.Claims) *http.Request {
				return bearerRequest("a.b.c")
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "malformed token",
		},
		{
			name: "basic scheme",
			given: func(*testing.T, *env, auth.Issued, map[string]any, auth.Claims) *http.Request {
				req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
				req.SetBasicAuth("alice@example.com", "alice-secret")
				return req
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "malformed Authorization header",
		},
		{
			name: "bearer without token",
			given: func(*testing.T, *env, auth.Issued, map[string]any, auth.Claims) *http.Request {
				req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
				req.Header.Set("Authorization", "Bearer")
				return req
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "malformed Authorization header",
		},
		{
			name: "bearer with two tokens",
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				return bearerRequest(iss.Token + " " + iss.Token)
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "malformed Authorization header",
		},
		{
			name: "two Authorization headers",
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				req := bearerRequest(iss.Token)
				req.Header.Add("Authorization", "Bearer "+iss.Token)
				return req
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "malformed Authorization header",
		},
		{
			name: "oversized credential",
			given: func(*testing.T, *env, auth.Issued, map[string]any, auth.Claims) *http.Request {
				return bearerRequest(strings.Repeat("a", 5000))
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "credential too long",
		},
		{
			name: "tampered signature",
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				sig := strings.Split(iss.Token, ".")[2]
				// Change the first character: the last one partly encodes
				// padding bits and might decode to the same bytes.
				first := "A"
				if sig[0] == 'A' {
					first = "B"
				}
				return cookieRequest(auth.DefaultCookieName, replaceSegment(iss.Token, 2, first+sig[1:]))
			},
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "invalid token signature",
			wantCleared: true,
		},
		{
			name: "tampered payload",
			given: func(t *testing.T, _ *env, iss auth.Issued, _ map[string]any, cl auth.Claims) *http.Request {
				cl.Subject = userB.String()
				b, err := json.Marshal(cl)
				if err != nil {
					t.Fatal(err)
				}
				return cookieRequest(auth.DefaultCookieName, replaceSegment(iss.Token, 1, base64.RawURLEncoding.EncodeToString(b)))
			},
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "invalid token signature",
			wantCleared: true,
		},
		{
			name: "alg none",
			given: func(t *testing.T, _ *env, _ auth.Issued, _ map[string]any, cl auth.Claims) *http.Request {
				return cookieRequest(auth.DefaultCookieName, forge(t, jwt.SigningMethodNone, cl, jwt.UnsafeAllowNoneSignatureType, nil))
			},
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "invalid token signature or algorithm",
			wantCleared: true,
		},
		{
			name: "HS384 with the right secret",
			given: func(t *testing.T, _ *env, _ auth.Issued, hdr map[string]any, cl auth.Claims) *http.Request {
				return bearerRequest(forge(t, jwt.SigningMethodHS384, cl, testSecret, map[string]any{"kid": hdr["kid"]}))
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "invalid token signature or algorithm",
		},
		{
			name: "RS256 header over an HMAC signature",
			given: func(t *testing.T, _ *env, _ auth.Issued, hdr map[string]any, cl auth.Claims) *http.Request {
				return bearerRequest(forgeRaw(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": hdr["kid"]}, cl, testSecret))
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "invalid token signature or algorithm",
		},
		{
			name: "unknown secret without kid",
			given: func(t *testing.T, _ *env, _ auth.Issued, _ map[string]any, cl auth.Claims) *http.Request {
				return bearerRequest(forge(t, jwt.SigningMethodHS256, cl, otherSecret, nil))
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "invalid token signature",
		},
		{
			name: "right secret without kid",
			given: func(t *testing.T, _ *env, _ auth.Issued, _ map[string]any, cl auth.Claims) *http.Request {
				return bearerRequest(forge(t, jwt.SigningMethodHS256, cl, testSecret, nil))
			},
		},
		{
			name: "right secret with unknown kid",
			given: func(t *testing.T, _ *env, _ auth.Issued, _ map[string]any, cl auth.Claims) *http.Request {
				return bearerRequest(forge(t, jwt.SigningMethodHS256, cl, testSecret, map[string]any{"kid": "0011223344556677"}))
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "unknown key",
		},
		{
			name: "kid not a string",
			given: func(t *testing.T, _ *env, _ auth.Issued, _ map[string]any, cl auth.Claims) *http.Request {
				return bearerRequest(forge(t, jwt.SigningMethodHS256, cl, testSecret, map[string]any{"kid": 7}))
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "unknown key",
		},
		{
			name: "expired",
			given: withClaims(func(cl *auth.Claims) {
				cl.ExpiresAt = jwt.NewNumericDate(cl.IssuedAt.Add(-time.Second))
			}),
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "token expired",
			wantCleared: true,
		},
		{
			name:        "no exp",
			given:       withClaims(func(cl *auth.Claims) { cl.ExpiresAt = nil }),
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "misses a required claim",
			wantCleared: true,
		},
		{
			name: "not valid yet",
			given: withClaims(func(cl *auth.Claims) {
				cl.NotBefore = jwt.NewNumericDate(cl.IssuedAt.Add(time.Hour))
			}),
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "invalid claims",
			wantCleared: true,
		},
		{
			name:        "wrong issuer",
			given:       withClaims(func(cl *auth.Claims) { cl.Issuer = "someone-else" }),
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "wrong issuer",
			wantCleared: true,
		},
		{
			name:        "no issuer",
			given:       withClaims(func(cl *auth.Claims) { cl.Issuer = "" }),
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "misses a required claim",
			wantCleared: true,
		},
		{
			name:        "sub not a uuid",
			given:       withClaims(func(cl *auth.Claims) { cl.Subject = "alice" }),
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "subject is not a user id",
			wantCleared: true,
		},
		{
			name:        "sub a non-canonical uuid",
			given:       withClaims(func(cl *auth.Claims) { cl.Subject = "urn:uuid:" + cl.Subject }),
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "subject is not a user id",
			wantCleared: true,
		},
		{
			name:        "sub the nil uuid",
			given:       withClaims(func(cl *auth.Claims) { cl.Subject = uuid.Nil.String() }),
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "subject is not a user id",
			wantCleared: true,
		},
		{
			name:        "empty sid",
			given:       withClaims(func(cl *auth.Claims) { cl.SID = "" }),
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "no session",
			wantCleared: true,
		},
		{
			name:        "sid never issued",
			given:       withClaims(func(cl *auth.Claims) { cl.SID = uuid.NewString() }),
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "session revoked or expired",
			wantCleared: true,
		},
		{
			name:        "my sid under another user's sub",
			given:       withClaims(func(cl *auth.Claims) { cl.Subject = userB.String() }),
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "session revoked or expired",
			wantCleared: true,
		},
		{
			name: "revoked",
			before: func(t *testing.T, e *env, iss auth.Issued) {
				if err := e.m.Revoke(t.Context(), userA, iss.SessionID); err != nil {
					t.Fatal(err)
				}
			},
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				return cookieRequest(auth.DefaultCookieName, iss.Token)
			},
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "session revoked or expired",
			wantCleared: true,
		},
		{
			name: "revoked, bearer",
			before: func(t *testing.T, e *env, iss auth.Issued) {
				if err := e.m.Revoke(t.Context(), userA, iss.SessionID); err != nil {
					t.Fatal(err)
				}
			},
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				return bearerRequest(iss.Token)
			},
			wantErr: auth.ErrUnauthenticated,
			wantMsg: "session revoked or expired",
		},
		{
			name: "stored session belongs to another user",
			before: func(_ *testing.T, e *env, iss auth.Issued) {
				e.store.edit(userA, iss.SessionID, func(s *profile.Session) { s.UserID = userB })
			},
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				return cookieRequest(auth.DefaultCookieName, iss.Token)
			},
			wantErr:     auth.ErrUnauthenticated,
			wantMsg:     "session belongs to another user",
			wantCleared: true,
		},
		{
			name:   "store outage",
			before: func(_ *testing.T, e *env, _ auth.Issued) { e.store.setErr(&e.store.lookupErr, errStoreDown) },
			given: func(_ *testing.T, _ *env, iss auth.Issued, _ map[string]any, _ auth.Claims) *http.Request {
				return cookieRequest(auth.DefaultCookieName, iss.Token)
			},
			wantErr: profile.ErrUnavailable,
			wantMsg: "connection refused",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			iss := e.issue(t, userA)
			hdr, cl := parseUnverified(t, iss.Token)
			if tt.before != nil {
				tt.before(t, e, iss)
			}
			req := tt.given(t, e, iss, hdr, cl)
			r := e.serve(req)

			switch {
			case tt.wantErr == nil && r.err != nil:
				t.Fatalf("err = %v, want nil", r.err)
			case tt.wantErr != nil && !errors.Is(r.err, tt.wantErr):
				t.Fatalf("err = %v, want one wrapping %v", r.err, tt.wantErr)
			}
			if r.err != nil && !strings.Contains(r.err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want one saying %q", r.err, tt.wantMsg)
			}
			if got, want := r.called, tt.wantErr == nil; got != want {
				t.Errorf("handler called = %v, want %v", got, want)
			}
			if tt.wantErr == profile.ErrUnavailable && errors.Is(r.err, auth.ErrUnauthenticated) {
				t.Errorf("outage err = %v also wraps ErrUnauthenticated; it must not log anyone out", r.err)
			}
			if tt.wantErr == nil {
				if got, want := r.userID, userA; got != want {
					t.Errorf("UserID = %v, want %v", got, want)
				}
				if got, want := r.sessionID, iss.SessionID; got != want {
					t.Errorf("SessionID = %q, want %q", got, want)
				}
			}
			if got, want := clearedCookie(r.rec, auth.DefaultCookieName), tt.wantCleared; got != want {
				t.Errorf("cookie cleared = %v, want %v (Set-Cookie: %q)", got, want, r.rec.Header().Values("Set-Cookie"))
			}
			// Only a cookie can change the answer to a request without an
			// Authorization header.
			wantVary := "Cookie"
			if req.Header.Get("Authorization") != "" {
				wantVary = ""
			}
			if got := r.rec.Header().Get("Vary"); got != wantVary {
				t.Errorf("Vary = %q, want %q", got, wantVary)
			}
		})
	}
}

// clearedCookie reports whether the response deletes the named cookie.
func clearedCookie(rec *httptest.ResponseRecorder, name string) bool {
	for _, c := range rec.Result().Cookies() {
		if c.Name == name && c.MaxAge < 0 && c.Value == "" {
			return true
		}
	}
	return false
}

func TestMiddlewareSliding(t *testing.T) {
	e := newEnv(t, nil) // TokenTTL 20m: touch every minute
	iss := e.issue(t, userA)
	steps := []struct {
		advance     time.Duration
		wantTouches int
	}{
		{0, 0},                                // just created: LastSeen is now
		{30 * time.Second, 0},                 // busy user: no write
		{30*time.Second - 1, 0},               // just under a minute since LastSeen
		{1, 1},                                // a minute: slide
		{59 * time.Second, 1},                 // measured from the new LastSeen
		{time.Second, 2},                      // and slide again
		{19 * time.Minute, 3},                 // idle but not past TokenTTL: slide
		{20*time.Minute - time.Nanosecond, 4}, // just inside the idle timeout
	}
	for i, s := range steps {
		e.clock.Advance(s.advance)
		r := e.serve(cookieRequest(auth.DefaultCookieName, iss.Token))
		if r.err != nil {
			t.Fatalf("step %d: err = %v, want nil", i, r.err)
		}
		if got, want := e.store.touchCount(), s.wantTouches; got != want {
			t.Fatalf("step %d: Touch calls = %d, want %d", i, got, want)
		}
	}
	s, _ := e.store.session(userA, iss.SessionID)
	if got, want := s.LastSeen, e.clock.Now(); !got.Equal(want) {
		t.Errorf("LastSeen = %v, want %v", got, want)
	}
	if got, want := e.store.lastTTL, 20*time.Minute; got != want {
		t.Errorf("Touch ttl = %v, want %v", got, want)
	}
}

func TestMiddlewareTouchInterval(t *testing.T) {
	tests := []struct {
		ttl       time.Duration
		wantEvery time.Duration
	}{
		{10 * time.Second, time.Second},      // ttl/20 = 500ms, clamped up
		{20 * time.Second, time.Second},      // exactly 1s
		{10 * time.Minute, 30 * time.Second}, // ttl/20
		{20 * time.Minute, time.Minute},      // the default
		{2 * time.Hour, time.Minute},         // clamped down
	}
	for _, tt := range tests {
		t.Run(tt.ttl.String(), func(t *testing.T) {
			e := newEnv(t, func(c *auth.Config) { c.TokenTTL, c.MaxAge = tt.ttl, 24*time.Hour })
			iss := e.issue(t, userA)
			e.clock.Advance(tt.wantEvery - time.Nanosecond)
			if r := e.serve(bearerRequest(iss.Token)); r.err != nil {
				t.Fatalf("err = %v", r.err)
			}
			if got, want := e.store.touchCount(), 0; got != want {
				t.Fatalf("Touch calls just before %v = %d, want %d", tt.wantEvery, got, want)
			}
			e.clock.Advance(time.Nanosecond)
			if r := e.serve(bearerRequest(iss.Token)); r.err != nil {
				t.Fatalf("err = %v", r.err)
			}
			if got, want := e.store.touchCount(), 1; got != want {
				t.Fatalf("Touch calls at %v = %d, want %d", tt.wantEvery, got, want)
			}
		})
	}
}

func TestMiddlewareTouchNeverOutlivesMaxAge(t *testing.T) {
	e := newEnv(t, func(c *auth.Config) { c.TokenTTL, c.MaxAge = 20*time.Minute, time.Hour })
	iss := e.issue(t, userA)
	for range 5 { // keep the session busy up to 50 minutes
		e.clock.Advance(10 * time.Minute)
		if r := e.serve(bearerRequest(iss.Token)); r.err != nil {
			t.Fatalf("err = %v", r.err)
		}
	}
	if got, want := e.store.lastTTL, 10*time.Minute; got != want {
		t.Errorf("Touch ttl 10m before MaxAge = %v, want %v", got, want)
	}
}

func TestMiddlewareTouchFails(t *testing.T) {
	e := newEnv(t, nil)
	iss := e.issue(t, userA)
	e.store.setErr(&e.store.touchErr, errStoreDown)
	e.clock.Advance(5 * time.Minute)
	r := e.serve(cookieRequest(auth.DefaultCookieName, iss.Token))
	if r.err != nil || !r.called {
		t.Fatalf("err = %v, handler called = %v; want nil, true", r.err, r.called)
	}
	if got, want := e.store.touchCount(), 1; got != want {
		t.Errorf("Touch calls = %d, want %d", got, want)
	}
	if clearedCookie(r.rec, auth.DefaultCookieName) {
		t.Error("cookie cleared after a failed Touch; a lost write must not log anyone out")
	}
	if got, want := e.logs.String(), "level=WARN"; !strings.Contains(got, want) {
		t.Errorf("logs = %q, want a line with %q", got, want)
	}
}

func TestMiddlewareTouchFindsSessionGone(t *testing.T) {
	e := newEnv(t, nil)
	iss := e.issue(t, userA)
	e.clock.Advance(5 * time.Minute)
	// Revoked between Lookup and Touch: the store says so on Touch.
	e.store.setErr(&e.store.touchErr, profile.ErrNotFound)
	r := e.serve(cookieRequest(auth.DefaultCookieName, iss.Token))
	if !errors.Is(r.err, auth.ErrUnauthenticated) {
		t.Fatalf("err = %v, want one wrapping ErrUnauthenticated", r.err)
	}
	if r.called {
		t.Error("handler called for a session that is gone")
	}
}

func TestMiddlewareIdleTimeout(t *testing.T) {
	tests := []struct {
		name string
		idle func(e *env, iss auth.Issued)
	}{
		{
			name: "store expired it",
			idle: func(e *env, _ auth.Issued) { e.clock.Advance(20 * time.Minute) },
		},
		{
			// A store whose TTLs do not run in real time (the embedded
			// Redis) still holds the session; LastSeen says it idled out.
			name: "store still holds it",
			idle: func(e *env, iss auth.Issued) {
				e.store.edit(userA, iss.SessionID, func(s *profile.Session) { s.LastSeen = s.LastSeen.Add(-20 * time.Minute) })
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			iss := e.issue(t, userA)
			tt.idle(e, iss)
			r := e.serve(cookieRequest(auth.DefaultCookieName, iss.Token))
			if !errors.Is(r.err, auth.ErrUnauthenticated) {
				t.Fatalf("err = %v, want one wrapping ErrUnauthenticated", r.err)
			}
			if !clearedCookie(r.rec, auth.DefaultCookieName) {
				t.Error("cookie not cleared")
			}
			if _, ok := e.store.session(userA, iss.SessionID); ok {
				t.Error("idle session still in the store, want it gone")
			}
		})
	}
}

func TestMiddlewareAbsoluteTimeout(t *testing.T) {
	t.Run("stored session older than MaxAge", func(t *testing.T) {
		e := newEnv(t, nil)
		iss := e.issue(t, userA)
		// The JWT is fresh, but the store's record is what counts (e.g.
		// MaxAge was lowered since the login).
		e.store.edit(userA, iss.SessionID, func(s *profile.Session) { s.Created = s.Created.Add(-12 * time.Hour) })
		r := e.serve(cookieRequest(auth.DefaultCookieName, iss.Token))
		if !errors.Is(r.err, auth.ErrUnauthenticated) {
			t.Fatalf("err = %v, want one wrapping ErrUnauthenticated", r.err)
		}
		if _, ok := e.store.session(userA, iss.SessionID); ok {
			t.Error("session still in the store, want it revoked")
		}
		if !clearedCookie(r.rec, auth.DefaultCookieName) {
			t.Error("cookie not cleared")
		}
	})
	t.Run("revoke fails", func(t *testing.T) {
		e := newEnv(t, nil)
		iss := e.issue(t, userA)
		e.store.edit(userA, iss.SessionID, func(s *profile.Session) { s.Created = s.Created.Add(-13 * time.Hour) })
		e.store.setErr(&e.store.revokeErr, errStoreDown)
		r := e.serve(cookieRequest(auth.DefaultCookieName, iss.Token))
		if !errors.Is(r.err, auth.ErrUnauthenticated) {
			t.Fatalf("err = %v, want one wrapping ErrUnauthenticated", r.err)
		}
		if got, want := len(e.store.revoked), 1; got != want {
			t.Errorf("Revoke calls = %d, want %d", got, want)
		}
	})
	t.Run("busy session ends at MaxAge", func(t *testing.T) {
		e := newEnv(t, func(c *auth.Config) { c.TokenTTL, c.MaxAge = 20*time.Minute, time.Hour })
		iss := e.issue(t, userA)
		for i := range 6 {
			e.clock.Advance(10 * time.Minute)
			r := e.serve(bearerRequest(iss.Token))
			if got, want := r.err == nil, i < 5; got != want {
				t.Fatalf("after %d min: err = %v, want ok = %v", 10*(i+1), r.err, want)
			}
		}
	})
}

func TestKeyRotation(t *testing.T) {
	old := newEnv(t, func(c *auth.Config) { c.Secret = otherSecret })
	oldTok := old.issue(t, userA)

	tests := []struct {
		name     string
		previous [][]byte
		wantOK   bool
	}{
		{name: "old secret still accepted", previous: [][]byte{otherSecret}, wantOK: true},
		{name: "old secret dropped", previous: nil, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Same store and clock, new secret: a restarted instance.
			m, err := auth.New(auth.Config{
				Tokens:          old.store,
				Secret:          testSecret,
				PreviousSecrets: tt.previous,
				Now:             old.clock.Now,
				Logger:          discardLogger(),
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			e := &env{m: m, store: old.store, clock: old.clock, logs: &syncbuf.Buffer{}}
			r := e.serve(bearerRequest(oldTok.Token))
			if got, want := r.err == nil, tt.wantOK; got != want {
				t.Fatalf("old token: err = %v, want ok = %v", r.err, want)
			}
			if !tt.wantOK && !errors.Is(r.err, auth.ErrUnauthenticated) {
				t.Fatalf("old token: err = %v, want one wrapping ErrUnauthenticated", r.err)
			}

			newTok := e.issue(t, userA)
			oldHdr, _ := parseUnverified(t, oldTok.Token)
			newHdr, _ := parseUnverified(t, newTok.Token)
			if newHdr["kid"] == oldHdr["kid"] {
				t.Errorf("new token kid = %v, the same as the old one's", newHdr["kid"])
			}
			if kid, _ := newHdr["kid"].(string); len(kid) != 16 {
				t.Errorf("kid = %q, want 16 hex digits", kid)
			}
			// The new token verifies and is signed with the new secret.
			if r := e.serve(bearerRequest(newTok.Token)); r.err != nil {
				t.Fatalf("new token: err = %v", r.err)
			}
			if _, err := jwt.Parse(newTok.Token, func(*jwt.Token) (any, error) { return testSecret, nil }, jwt.WithoutClaimsValidation()); err != nil {
				t.Errorf("new token does not verify with the new secret: %v", err)
			}
		})
	}
}

// TestLogsNeverContainCredentials runs failing and succeeding requests at
// Debug level and checks that no log line holds a JWT, a token or a secret.
func TestLogsNeverContainCredentials(t *testing.T) {
	e := newEnv(t, func(c *auth.Config) { c.PreviousSecrets = [][]byte{otherSecret} })
	iss := e.issue(t, userA)
	revoked := e.issue(t, userA)
	_, cl := parseUnverified(t, iss.Token)
	_, revokedCl := parseUnverified(t, revoked.Token)
	if err := e.m.Revoke(t.Context(), userA, revoked.SessionID); err != nil {
		t.Fatal(err)
	}
	expired := cl
	expired.ExpiresAt = jwt.NewNumericDate(e.clock.Now().Add(-time.Minute))
	expiredTok := forge(t, jwt.SigningMethodHS256, expired, testSecret, nil)
	wrongUser := cl
	wrongUser.Subject = userB.String()
	wrongUserTok := forge(t, jwt.SigningMethodHS256, wrongUser, testSecret, nil)

	secrets := []string{
		iss.Token, revoked.Token, expiredTok, wrongUserTok,
		cl.SID, revokedCl.SID,
		strings.Split(iss.Token, ".")[2], // a signature alone
		string(testSecret), string(otherSecret),
	}
	run := func(req *http.Request) { e.serve(req) }
	run(cookieRequest(auth.DefaultCookieName, iss.Token))
	run(bearerRequest(iss.Token))
	run(cookieRequest(auth.DefaultCookieName, revoked.Token))
	run(bearerRequest(revoked.Token))
	run(cookieRequest(auth.DefaultCookieName, expiredTok))
	run(bearerRequest(wrongUserTok))
	run(cookieRequest(auth.DefaultCookieName, iss.Token[:len(iss.Token)-3]))
	run(cookieRequest(auth.DefaultCookieName, replaceSegment(iss.Token, 0, "eyJhbGciOiJub25lIn0")))
	run(bearerRequest(iss.Token + "x"))
	e.store.setErr(&e.store.touchErr, errStoreDown)
	e.clock.Advance(5 * time.Minute)
	run(cookieRequest(auth.DefaultCookieName, iss.Token)) // Warn: Touch failed
	e.store.setErr(&e.store.lookupErr, errStoreDown)
	run(cookieRequest(auth.DefaultCookieName, iss.Token))
	e.store.setErr(&e.store.lookupErr, nil)
	e.store.edit(userA, iss.SessionID, func(s *profile.Session) { s.Created = s.Created.Add(-24 * time.Hour) })
	e.store.setErr(&e.store.revokeErr, errStoreDown)
	run(cookieRequest(auth.DefaultCookieName, iss.Token)) // Warn: revoke failed

	logs := e.logs.String()
	if got, want := strings.Count(logs, "\n"), 10; got < want {
		t.Fatalf("%d log lines, want at least %d (is the capture working?):\n%s", got, want, logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain a credential %.12q...:\n%s", s, logs)
		}
	}
}

// FuzzMiddlewareCredential feeds arbitrary credentials as cookie and bearer
// values: the middleware must not panic and may only answer "unauthenticated".
func FuzzMiddlewareCredential(f *testing.F) {
	e := newEnv(f, func(c *auth.Config) { c.Logger = discardLogger() })
	iss := e.issue(f, userA)
	f.Add(iss.Token)
	f.Add("")
	f.Add(" ")
	f.Add("Bearer")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(replaceSegment(iss.Token, 2, ""))
	f.Add(iss.Token + "." + iss.Token)
	f.Add(strings.Repeat("A", 5000))
	f.Add("\x00\xff\n\r;=,\"")
	f.Fuzz(func(t *testing.T, s string) {
		for _, req := range []*http.Request{
			func() *http.Request {
				req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
				req.Header.Set("Cookie", auth.DefaultCookieName+"="+s)
				return req
			}(),
			func() *http.Request {
				req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
				req.Header.Set("Authorization", "Bearer "+s)
				return req
			}(),
			func() *http.Request {
				req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
				req.Header.Set("Authorization", s)
				return req
			}(),
		} {
			r := e.serve(req)
			if r.err != nil && !errors.Is(r.err, auth.ErrUnauthenticated) {
				t.Fatalf("err = %v, want nil or one wrapping ErrUnauthenticated", r.err)
			}
			if r.err == nil && r.userID != userA {
				t.Fatalf("accepted %q as user %v", s, r.userID)
			}
		}
	})
}

func BenchmarkMiddleware(b *testing.B) {
	e := newEnv(b, func(c *auth.Config) { c.Logger = discardLogger() })
	iss := e.issue(b, userA)
	h := e.m.Middleware()(func(echo.Context) error { return nil })
	ec := echo.New()
	for _, bc := range []struct {
		name string
		req  *http.Request
	}{
		{"cookie", cookieRequest(auth.DefaultCookieName, iss.Token)},
		{"bearer", bearerRequest(iss.Token)},
		{"rejected", cookieRequest(auth.DefaultCookieName, "garbage")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := ec.NewContext(bc.req, httptest.NewRecorder())
				_ = h(c)
			}
		})
	}
}

// TestMiddlewareConcurrent shares one Manager between goroutines, as a
// server does; run with -race.
func TestMiddlewareConcurrent(t *testing.T) {
	e := newEnv(t, nil)
	tokens := []auth.Issued{e.issue(t, userA), e.issue(t, userA), e.issue(t, userB)}
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				iss := tokens[(g+i)%len(tokens)]
				if i%10 == 0 {
					e.clock.Advance(30 * time.Second) // makes some requests Touch
				}
				var req *http.Request
				if i%2 == 0 {
					req = bearerRequest(iss.Token)
				} else {
					req = cookieRequest(auth.DefaultCookieName, iss.Token)
				}
				if r := e.serve(req); r.err != nil {
					errs <- r.err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("err = %v, want nil", err)
	}
	if e.store.touchCount() == 0 {
		t.Error("no Touch calls, want some")
	}
}
