package auth_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/profile"
)

func TestNew(t *testing.T) {
	store := newFakeStore(time.Now)
	tests := []struct {
		name    string
		cfg     auth.Config
		wantErr string // substring; "" for success
	}{
		{name: "defaults", cfg: auth.Config{Tokens: store, Secret: bytes.Repeat([]byte{1}, 32)}},
		{name: "no store", cfg: auth.Config{Secret: testSecret}, wantErr: "Tokens"},
		{name: "no secret", cfg: auth.Config{Tokens: store}, wantErr: "secret"},
		{name: "31-byte secret", cfg: auth.Config{Tokens: store, Secret: bytes.Repeat([]byte{1}, 31)}, wantErr: "secret has 31 bytes"},
		{
			name:    "short previous secret",
			cfg:     auth.Config{Tokens: store, Secret: testSecret, PreviousSecrets: [][]byte{[]byte("short")}},
			wantErr: "previous secret 1",
		},
		{
			name: "previous secret equal to the current one",
			cfg:  auth.Config{Tokens: store, Secret: testSecret, PreviousSecrets: [][]byte{testSecret}},
		},
		{name: "negative TokenTTL", cfg: auth.Config{Tokens: store, Secret: testSecret, TokenTTL: -time.Second}, wantErr: "TokenTTL"},
		{
			name:    "MaxAge shorter than TokenTTL",
			cfg:     auth.Config{Tokens: store, Secret: testSecret, TokenTTL: time.Hour, MaxAge: time.Minute},
			wantErr: "MaxAge",
		},
		{
			name:    "TokenTTL longer than the default MaxAge",
			cfg:     auth.Config{Tokens: store, Secret: testSecret, TokenTTL: 24 * time.Hour},
			wantErr: "MaxAge",
		},
		{name: "MaxAge equal to TokenTTL", cfg: auth.Config{Tokens: store, Secret: testSecret, TokenTTL: time.Hour, MaxAge: time.Hour}},
		{name: "invalid cookie name", cfg: auth.Config{Tokens: store, Secret: testSecret, CookieName: "a b"}, wantErr: "cookie name"},
		// The prefix is added to Secure cookies, never configured.
		{name: "__Host- cookie name", cfg: auth.Config{Tokens: store, Secret: testSecret, CookieName: "__Host-s"}, wantErr: "prefix"},
		{name: "__secure- cookie name", cfg: auth.Config{Tokens: store, Secret: testSecret, CookieName: "__secure-s"}, wantErr: "prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := auth.New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if m == nil {
					t.Fatal("New returned a nil Manager")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New err = %v, want one mentioning %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), string(testSecret)) {
				t.Errorf("New err = %v reveals the secret", err)
			}
		})
	}
}

func TestNewCopiesSecret(t *testing.T) {
	secret := bytes.Clone(testSecret)
	e := newEnv(t, func(c *auth.Config) { c.Secret = secret })
	iss := e.issue(t, userA)
	for i := range secret { // the caller reuses its buffer
		secret[i] = 0
	}
	if r := e.serve(bearerRequest(iss.Token)); r.err != nil {
		t.Fatalf("err = %v after the caller changed its secret slice", r.err)
	}
}

func TestCookieName(t *testing.T) {
	tests := []struct{ give, want string }{
		{"", "pc_session"},
		{"my_session", "my_session"},
	}
	for _, tt := range tests {
		e := newEnv(t, func(c *auth.Config) { c.CookieName = tt.give })
		if got := e.m.CookieName(); got != tt.want {
			t.Errorf("CookieName() with %q = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestIssue(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	iss := e.issue(t, userA)

	hdr, cl := parseUnverified(t, iss.Token)
	if got, want := hdr["alg"], "HS256"; got != want {
		t.Errorf("alg = %v, want %v", got, want)
	}
	if _, ok := hdr["kid"].(string); !ok {
		t.Errorf("kid = %v, want a string", hdr["kid"])
	}
	if got, want := cl.Subject, userA.String(); got != want {
		t.Errorf("sub = %q, want %q", got, want)
	}
	if got, want := cl.Issuer, "profilecache"; got != want {
		t.Errorf("iss = %q, want %q", got, want)
	}
	if _, err := uuid.Parse(cl.SID); err != nil {
		t.Errorf("sid = %q, want a uuid: %v", cl.SID, err)
	}
	if got, want := cl.IssuedAt.Time, now; !got.Equal(want) {
		t.Errorf("iat = %v, want %v", got, want)
	}
	if got, want := cl.ExpiresAt.Time, now.Add(12*time.Hour); !got.Equal(want) {
		t.Errorf("exp = %v, want %v", got, want)
	}
	if got, want := iss.ExpiresAt, now.Add(12*time.Hour); !got.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", got, want)
	}
	if got, want := iss.SessionID, auth.SessionIDFor(cl.SID); got != want {
		t.Errorf("SessionID = %q, want SessionIDFor(sid) = %q", got, want)
	}

	s, ok := e.store.session(userA, iss.SessionID)
	if !ok {
		t.Fatalf("no session %q in the store", iss.SessionID)
	}
	want := profile.Session{ID: iss.SessionID, UserID: userA, Created: now, LastSeen: now, UserAgent: "test-agent/1.0"}
	if s != want {
		t.Errorf("stored session = %+v, want %+v", s, want)
	}
	// The store never sees the token itself.
	if strings.Contains(s.ID, cl.SID) {
		t.Errorf("stored session id %q contains the token", s.ID)
	}
}

func TestIssueTTL(t *testing.T) {
	e := newEnv(t, func(c *auth.Config) { c.TokenTTL = 5 * time.Minute })
	iss := e.issue(t, userA)
	e.clock.Advance(5*time.Minute - time.Nanosecond)
	if _, ok := e.store.session(userA, iss.SessionID); !ok {
		t.Fatal("session gone before TokenTTL")
	}
	e.clock.Advance(time.Nanosecond)
	if _, err := e.store.Lookup(t.Context(), userA, iss.SessionID); !errors.Is(err, profile.ErrNotFound) {
		t.Errorf("Lookup after TokenTTL err = %v, want ErrNotFound", err)
	}
}

func TestIssueFixation(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.issue(t, userA), e.issue(t, userA)
	_, ca := parseUnverified(t, a.Token)
	_, cb := parseUnverified(t, b.Token)
	if a.Token == b.Token || ca.SID == cb.SID || a.SessionID == b.SessionID {
		t.Errorf("two logins share a credential: tokens equal %v, sids equal %v, session ids equal %v",
			a.Token == b.Token, ca.SID == cb.SID, a.SessionID == b.SessionID)
	}
	// Both stay valid on their own: a new login does not end the old one.
	for _, iss := range []auth.Issued{a, b} {
		if r := e.serve(bearerRequest(iss.Token)); r.err != nil {
			t.Errorf("err = %v, want nil", r.err)
		}
	}
}

func TestIssueUserAgent(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "short", give: "Mozilla/5.0", want: "Mozilla/5.0"},
		{name: "empty", give: "", want: ""},
		{name: "exactly 256", give: strings.Repeat("a", 256), want: strings.Repeat("a", 256)},
		{name: "long ascii", give: strings.Repeat("a", 1000), want: strings.Repeat("a", 256)},
		{name: "huge", give: strings.Repeat("b", 64<<10), want: strings.Repeat("b", 256)},
		// "é" is 2 bytes: 255 a's + é would be 257 bytes, so é goes.
		{name: "rune across the limit", give: strings.Repeat("a", 255) + "é", want: strings.Repeat("a", 255)},
		{name: "multibyte", give: strings.Repeat("Zoë ", 100), want: strings.Repeat("Zoë ", 51) + "Z"},
		{name: "invalid utf-8", give: "agent\xff\xfe/1", want: "agent\uFFFD/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			iss, err := e.m.Issue(t.Context(), userA, "", tt.give)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			s, _ := e.store.session(userA, iss.SessionID)
			if got := s.UserAgent; got != tt.want {
				t.Errorf("UserAgent = %q, want %q", got, tt.want)
			}
			if len(s.UserAgent) > 256 || !utf8.ValidString(s.UserAgent) {
				t.Errorf("UserAgent has %d bytes, valid UTF-8 %v; want <= 256 and valid", len(s.UserAgent), utf8.ValidString(s.UserAgent))
			}
		})
	}
}

func TestIssueErrors(t *testing.T) {
	t.Run("store down", func(t *testing.T) {
		e := newEnv(t, nil)
		e.store.setErr(&e.store.createErr, errStoreDown)
		_, err := e.m.Issue(t.Context(), userA, "", "ua")
		if !errors.Is(err, profile.ErrUnavailable) || !errors.Is(err, errStoreDown) {
			t.Fatalf("err = %v, want one wrapping ErrUnavailable and the store's error", err)
		}
	})
	t.Run("nil user", func(t *testing.T) {
		e := newEnv(t, nil)
		if _, err := e.m.Issue(t.Context(), uuid.Nil, "", "ua"); err == nil {
			t.Fatal("Issue(uuid.Nil) err = nil, want an error")
		}
	})
}

func TestSessionIDFor(t *testing.T) {
	tok := "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b"
	id := auth.SessionIDFor(tok)
	if got, want := auth.SessionIDFor(tok), id; got != want {
		t.Errorf("SessionIDFor is not deterministic: %q, then %q", want, got)
	}
	if got, want := len(id), 22; got != want {
		t.Errorf("len(SessionIDFor) = %d, want %d", got, want)
	}
	if strings.ContainsAny(id, "+/=") {
		t.Errorf("SessionIDFor = %q, want unpadded base64url", id)
	}
	if other := auth.SessionIDFor(tok + "x"); other == id {
		t.Errorf("SessionIDFor gives %q for two tokens", id)
	}
}

func TestCookies(t *testing.T) {
	tests := []struct {
		name       string
		secure     bool
		httpsProxy bool // SecureRequest approves the request
		clear      bool
		wantValue  string
		wantMaxAge int
		wantSecure bool
	}{
		{name: "set", wantValue: "jwt-value"},
		{name: "set secure", secure: true, wantValue: "jwt-value", wantSecure: true},
		{name: "clear", clear: true, wantMaxAge: -1},
		{name: "clear secure", secure: true, clear: true, wantMaxAge: -1, wantSecure: true},
		{name: "set via https proxy", httpsProxy: true, wantValue: "jwt-value", wantSecure: true},
		{name: "clear via https proxy", httpsProxy: true, clear: true, wantMaxAge: -1, wantSecure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *auth.Config) {
				c.CookieSecure = tt.secure
				c.SecureRequest = func(*http.Request) bool { return tt.httpsProxy }
			})
			rec := httptest.NewRecorder()
			c := echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/login", nil), rec)
			if tt.clear {
				e.m.ClearCookie(c)
			} else {
				e.m.SetCookie(c, auth.Issued{Token: "jwt-value", SessionID: "sid", ExpiresAt: e.clock.Now().Add(time.Hour)})
			}

			cookies := rec.Result().Cookies()
			if got, want := len(cookies), 1; got != want {
				t.Fatalf("%d cookies, want %d", got, want)
			}
			ck := cookies[0]
			// A Secure cookie is a __Host- cookie: the browser then also
			// insists on Path=/ and no Domain (checked below).
			wantName := "pc_session"
			if tt.wantSecure {
				wantName = "__Host-pc_session"
			}
			if got := ck.Name; got != wantName {
				t.Errorf("Name = %q, want %q", got, wantName)
			}
			if got := e.m.CookieNameFor(c.Request()); got != wantName {
				t.Errorf("CookieNameFor = %q, want %q", got, wantName)
			}
			if ck.Domain != "" {
				t.Errorf("Domain = %q, want none (host-only)", ck.Domain)
			}
			if got, want := ck.Value, tt.wantValue; got != want {
				t.Errorf("Value = %q, want %q", got, want)
			}
			if got, want := ck.MaxAge, tt.wantMaxAge; got != want {
				t.Errorf("MaxAge = %d, want %d", got, want)
			}
			if !tt.clear && !ck.Expires.IsZero() {
				t.Errorf("Expires = %v, want a browser-session cookie", ck.Expires)
			}
			if got, want := ck.Path, "/"; got != want {
				t.Errorf("Path = %q, want %q", got, want)
			}
			if !ck.HttpOnly {
				t.Error("HttpOnly = false, want true")
			}
			if got, want := ck.SameSite, http.SameSiteLaxMode; got != want {
				t.Errorf("SameSite = %v, want %v", got, want)
			}
			if got, want := ck.Secure, tt.wantSecure; got != want {
				t.Errorf("Secure = %v, want %v", got, want)
			}
			if got, want := rec.Header().Values("Vary"), []string{"Cookie"}; !equalStrings(got, want) {
				t.Errorf("Vary = %q, want %q", got, want)
			}
			if got, want := rec.Header().Values("Cache-Control"), []string{`no-cache="Set-Cookie"`}; !equalStrings(got, want) {
				t.Errorf("Cache-Control = %q, want %q", got, want)
			}
		})
	}
}

func TestCookieRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	iss := e.issue(t, userA)
	rec := httptest.NewRecorder()
	e.m.SetCookie(echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/login", nil), rec), iss)

	req := httptest.NewRequest(http.MethodGet, "/profile", nil)
	for _, ck := range rec.Result().Cookies() {
		req.AddCookie(ck)
	}
	r := e.serve(req)
	if r.err != nil {
		t.Fatalf("err = %v, want nil", r.err)
	}
	if got, want := r.rec.Header().Values("Vary"), []string{"Cookie"}; !equalStrings(got, want) {
		t.Errorf("Vary = %q, want %q (once)", got, want)
	}
}

// TestSecureCookieName: on a request whose cookie is Secure the middleware
// reads only the __Host- cookie, so a plain-named cookie planted by a
// sibling subdomain or over plain HTTP is not even looked at; on a plain
// request only the plain name counts (browsers do not send Secure cookies
// there).
func TestSecureCookieName(t *testing.T) {
	for _, tt := range []struct {
		name       string
		httpsProxy bool
		cookie     string
		wantOK     bool
	}{
		{"https, __Host- cookie", true, "__Host-pc_session", true},
		{"https, planted plain cookie", true, "pc_session", false},
		{"http, plain cookie", false, "pc_session", true},
		{"http, __Host- cookie", false, "__Host-pc_session", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *auth.Config) {
				c.SecureRequest = func(*http.Request) bool { return tt.httpsProxy }
			})
			iss := e.issue(t, userA)
			r := e.serve(cookieRequest(tt.cookie, iss.Token))
			if got := r.err == nil; got != tt.wantOK {
				t.Fatalf("err = %v, want ok=%v", r.err, tt.wantOK)
			}
			if !tt.wantOK && !errors.Is(r.err, auth.ErrUnauthenticated) {
				t.Errorf("err = %v, want ErrUnauthenticated", r.err)
			}
		})
	}
	t.Run("clear follows the request", func(t *testing.T) {
		e := newEnv(t, func(c *auth.Config) { c.SecureRequest = func(*http.Request) bool { return true } })
		rec := httptest.NewRecorder()
		e.m.ClearCookie(echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/logout", nil), rec))
		cookies := rec.Result().Cookies()
		if len(cookies) != 1 || cookies[0].Name != "__Host-pc_session" || cookies[0].MaxAge >= 0 || !cookies[0].Secure {
			t.Errorf("ClearCookie on HTTPS sent %v, want one expired Secure __Host-pc_session", cookies)
		}
	})
}

func TestCookieLastWriteWins(t *testing.T) {
	e := newEnv(t, nil)
	rec := httptest.NewRecorder()
	c := echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/logout", nil), rec)
	c.SetCookie(&http.Cookie{Name: "_csrf", Value: "keep-me"})
	e.m.SetCookie(c, auth.Issued{Token: "first"})
	e.m.ClearCookie(c) // e.g. the middleware rejected a bad cookie
	e.m.ClearCookie(c) // and the logout handler clears it again
	e.m.SetCookie(c, auth.Issued{Token: "second"})

	got := map[string]string{}
	n := 0
	for _, ck := range rec.Result().Cookies() {
		got[ck.Name] = ck.Value
		n++
	}
	if want := map[string]string{"_csrf": "keep-me", "pc_session": "second"}; n != len(want) || got["_csrf"] != want["_csrf"] || got["pc_session"] != want["pc_session"] {
		t.Errorf("%d cookies %v, want %v", n, got, want)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRevoke(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.issue(t, userA), e.issue(t, userA)
	other := e.issue(t, userB)

	// Revoking another user's session through my id does nothing.
	if err := e.m.Revoke(t.Context(), userA, other.SessionID); err != nil {
		t.Fatalf("Revoke(other user's session): %v", err)
	}
	if r := e.serve(bearerRequest(other.Token)); r.err != nil {
		t.Errorf("other user's session after my Revoke: err = %v, want nil", r.err)
	}

	if err := e.m.Revoke(t.Context(), userA, a.SessionID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if r := e.serve(bearerRequest(a.Token)); !errors.Is(r.err, auth.ErrUnauthenticated) {
		t.Errorf("revoked session: err = %v, want ErrUnauthenticated", r.err)
	}
	if r := e.serve(bearerRequest(b.Token)); r.err != nil {
		t.Errorf("sibling session after Revoke: err = %v, want nil", r.err)
	}

	// Malformed ids never reach the store.
	calls := len(e.store.revoked)
	for _, id := range []string{"", "x", strings.Repeat("*", 22), "../../etc/passwd", b.SessionID + "x"} {
		if err := e.m.Revoke(t.Context(), userA, id); err != nil {
			t.Errorf("Revoke(%q) = %v, want nil (no-op)", id, err)
		}
	}
	if got, want := len(e.store.revoked), calls; got != want {
		t.Errorf("store Revoke calls = %d, want %d", got, want)
	}

	e.store.setErr(&e.store.revokeErr, errStoreDown)
	if err := e.m.Revoke(t.Context(), userA, b.SessionID); !errors.Is(err, profile.ErrUnavailable) || !errors.Is(err, errStoreDown) {
		t.Errorf("Revoke with the store down: err = %v, want one wrapping ErrUnavailable and the store's error", err)
	}
}

func TestRevokeAll(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.issue(t, userA), e.issue(t, userA)
	other := e.issue(t, userB)

	n, err := e.m.RevokeAll(t.Context(), userA)
	if err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	if got, want := n, 2; got != want {
		t.Errorf("RevokeAll = %d, want %d", got, want)
	}
	for _, iss := range []auth.Issued{a, b} {
		if r := e.serve(bearerRequest(iss.Token)); !errors.Is(r.err, auth.ErrUnauthenticated) {
			t.Errorf("after RevokeAll: err = %v, want ErrUnauthenticated", r.err)
		}
	}
	if r := e.serve(bearerRequest(other.Token)); r.err != nil {
		t.Errorf("other user after RevokeAll: err = %v, want nil", r.err)
	}

	e.store.setErr(&e.store.revokeAllErr, errStoreDown)
	if _, err := e.m.RevokeAll(t.Context(), userA); !errors.Is(err, profile.ErrUnavailable) {
		t.Errorf("RevokeAll with the store down: err = %v, want ErrUnavailable", err)
	}
}

func TestSessions(t *testing.T) {
	e := newEnv(t, nil)
	a := e.issue(t, userA)
	e.clock.Advance(2 * time.Minute)
	b := e.issue(t, userA)
	e.issue(t, userB)

	ss, err := e.m.Sessions(t.Context(), userA)
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	var got []string
	for _, s := range ss {
		got = append(got, s.ID)
	}
	if want := []string{b.SessionID, a.SessionID}; !equalStrings(got, want) {
		t.Errorf("Sessions ids = %q, want %q (most recent first)", got, want)
	}

	e.store.setErr(&e.store.listErr, errStoreDown)
	if _, err := e.m.Sessions(t.Context(), userA); !errors.Is(err, profile.ErrUnavailable) {
		t.Errorf("Sessions with the store down: err = %v, want ErrUnavailable", err)
	}
	e.store.setErr(&e.store.listErr, profile.ErrNotFound)
	if _, err := e.m.Sessions(t.Context(), userA); !errors.Is(err, profile.ErrNotFound) || errors.Is(err, profile.ErrUnavailable) {
		t.Errorf("Sessions not found: err = %v, want ErrNotFound only", err)
	}
}

func TestIdentity(t *testing.T) {
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
	if id, ok := auth.UserID(c); ok || id != uuid.Nil {
		t.Errorf("UserID before login = %v, %v; want Nil, false", id, ok)
	}
	if id, ok := auth.SessionID(c); ok || id != "" {
		t.Errorf("SessionID before login = %q, %v; want \"\", false", id, ok)
	}
	// A look-alike value under some key cannot pose as an identity.
	c.Set("user", userA)
	if _, ok := auth.UserID(c); ok {
		t.Error("UserID found an identity nobody set")
	}

	auth.WithIdentity(c, userA, "sess-1")
	if id, ok := auth.UserID(c); !ok || id != userA {
		t.Errorf("UserID = %v, %v; want %v, true", id, ok, userA)
	}
	if id, ok := auth.SessionID(c); !ok || id != "sess-1" {
		t.Errorf("SessionID = %q, %v; want %q, true", id, ok, "sess-1")
	}
}

// TestClaimsJSON pins the wire names other parties (the API contract, tests
// of other packages) may rely on.
func TestClaimsJSON(t *testing.T) {
	e := newEnv(t, nil)
	iss := e.issue(t, userA)
	var m jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(iss.Token, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sub", "sid", "iss", "iat", "exp"} {
		if _, ok := m[k]; !ok {
			t.Errorf("claims %v lack %q", m, k)
		}
	}
}
