package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/web"
)

func TestCSRF(t *testing.T) {
	form := url.Values{"email": {zoeEmail}, "password": {zoePassword}}
	cookieOnly := func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "_csrf", Value: csrfToken}) }
	for _, tc := range []struct {
		name       string
		method     string
		path       string
		body       string
		setup      func(*http.Request)
		wantStatus int
	}{
		// Plain clients (no Sec-Fetch-Site) must present the token.
		{"FormLoginNoToken", http.MethodPost, "/login", form.Encode(), cookieOnly, http.StatusBadRequest},
		{"FormLoginNoCookie", http.MethodPost, "/login", form.Encode() + "&_csrf=" + csrfToken, nil, http.StatusForbidden},
		{"FormLoginWrongToken", http.MethodPost, "/login", form.Encode() + "&_csrf=wrong", cookieOnly, http.StatusForbidden},
		{"FormLoginToken", http.MethodPost, "/login", form.Encode() + "&_csrf=" + csrfToken, cookieOnly, http.StatusSeeOther},
		{"CookieAuthAPINoToken", http.MethodPost, "/api/me/refresh", "", func(r *http.Request) {
			cookieOnly(r)
			r.Header.Set(hdrUser, zoeID.String())
		}, http.StatusBadRequest},
		{"CookieAuthAPIHeaderToken", http.MethodPost, "/api/me/refresh", "", func(r *http.Request) {
			cookieOnly(r)
			r.Header.Set(hdrUser, zoeID.String())
			r.Header.Set("X-CSRF-Token", csrfToken)
		}, http.StatusNoContent},
		{"CookieAuthDeleteNoToken", http.MethodDelete, "/api/sessions/" + otherSession, "", func(r *http.Request) {
			r.Header.Set(hdrUser, zoeID.String())
		}, http.StatusBadRequest},
		{"LogoutAllNoToken", http.MethodPost, "/logout-all", "", func(r *http.Request) {
			r.Header.Set(hdrUser, zoeID.String())
		}, http.StatusBadRequest},
		// API clients with a Bearer token need none.
		{"BearerAPI", http.MethodPost, "/api/me/refresh", "", func(r *http.Request) {
			r.Header.Set(hdrUser, zoeID.String())
			r.Header.Set("Authorization", "Bearer some.jwt.here")
		}, http.StatusNoContent},
		{"BearerSchemeIsCaseInsensitive", http.MethodPost, "/api/me/refresh", "", func(r *http.Request) {
			r.Header.Set(hdrUser, zoeID.String())
			r.Header.Set("Authorization", "bearer some.jwt.here")
		}, http.StatusNoContent},
		{"BasicAuthIsNotBearer", http.MethodPost, "/api/me/refresh", "", func(r *http.Request) {
			r.Header.Set(hdrUser, zoeID.String())
			r.Header.Set("Authorization", "Basic dTpw")
		}, http.StatusBadRequest},
		{"EmptyBearerIsNotBearer", http.MethodPost, "/api/me/refresh", "", func(r *http.Request) {
			r.Header.Set(hdrUser, zoeID.String())
			r.Header.Set("Authorization", "Bearer ")
		}, http.StatusBadRequest},
		// The JSON login has no session to ride on and no form content type.
		{"APILoginNoToken", http.MethodPost, "/api/login", `{"email":"zoe@example.com","password":"zoe-secret"}`, func(r *http.Request) {
			r.Header.Set("Content-Type", "application/json")
		}, http.StatusOK},
		// Browsers: echo trusts Sec-Fetch-Site.
		{"BrowserSameOrigin", http.MethodPost, "/login", form.Encode() + "&_csrf=" + echoSecFetchToken, func(r *http.Request) {
			r.Header.Set("Sec-Fetch-Site", "same-origin")
		}, http.StatusSeeOther},
		{"BrowserCrossSite", http.MethodPost, "/login", form.Encode() + "&_csrf=" + echoSecFetchToken, func(r *http.Request) {
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}, http.StatusForbidden},
		{"BrowserCrossSiteLogout", http.MethodPost, "/logout", "", func(r *http.Request) {
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			r.Header.Set(hdrUser, zoeID.String())
		}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", echo.MIMEApplicationForm)
			}
			if tc.setup != nil {
				tc.setup(req)
			}
			rec := httptest.NewRecorder()
			env.handler.ServeHTTP(rec, req)
			if got, want := rec.Code, tc.wantStatus; got != want {
				t.Errorf("status = %d, want %d; body %s", got, want, rec.Body)
			}
			if rec.Code == http.StatusForbidden || rec.Code == http.StatusBadRequest {
				if n := len(env.sessions.ids(zoeID)); n != 2 {
					t.Errorf("a rejected request changed the sessions: %d left", n)
				}
				if env.profiles.logins != 0 || env.profiles.refreshes != 0 {
					t.Errorf("a rejected request reached the service")
				}
			}
		})
	}
}

const echoSecFetchToken = "_echo_csrf_using_sec_fetch_site_"

// TestCSRFRoundTrip logs in as a plain HTTP client would: GET the form,
// then POST it with the cookie and the token from the page.
func TestCSRFRoundTrip(t *testing.T) {
	env := newTestEnv(t)
	rec := env.do(t, request{path: "/login"})
	csrf := cookie(rec, "_csrf")
	if csrf == nil {
		t.Fatal("no _csrf cookie")
	}
	body := rec.Body.String()
	const marker = `name="_csrf" value="`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatal("no _csrf field in the form")
	}
	token := body[i+len(marker):]
	token = token[:strings.IndexByte(token, '"')]

	form := url.Values{"email": {zoeEmail}, "password": {zoePassword}, "_csrf": {token}}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", echo.MIMEApplicationForm)
	req.AddCookie(csrf)
	rec = httptest.NewRecorder()
	env.handler.ServeHTTP(rec, req)
	if got, want := rec.Code, http.StatusSeeOther; got != want {
		t.Fatalf("status = %d, want %d; body %s", got, want, rec.Body)
	}
	if cookie(rec, cookieName) == nil {
		t.Error("no session cookie after login")
	}
}

func TestLoginRateLimit(t *testing.T) {
	const burst = 3
	slow := func(c *web.Config) { c.LoginByAddress = newFakeLimiter(burst) }
	login := func(env *testEnv, remoteAddr, xff string, api bool) *httptest.ResponseRecorder {
		var req *http.Request
		if api {
			req = httptest.NewRequest(http.MethodPost, "/api/login", strings.NewReader(`{"email":"zoe@example.com","password":"wrong"}`))
			req.Header.Set("Content-Type", "application/json")
		} else {
			req = httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("email=zoe%40example.com&password=wrong&_csrf="+csrfToken))
			req.Header.Set("Content-Type", echo.MIMEApplicationForm)
			req.AddCookie(&http.Cookie{Name: "_csrf", Value: csrfToken})
		}
		req.RemoteAddr = remoteAddr
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
			req.Header.Set("X-Real-IP", xff)
		}
		rec := httptest.NewRecorder()
		env.handler.ServeHTTP(rec, req)
		return rec
	}

	t.Run("API", func(t *testing.T) {
		env := newTestEnv(t, slow)
		for i := range burst {
			if rec := login(env, "192.0.2.1:1234", "", true); rec.Code != http.StatusUnauthorized {
				t.Fatalf("attempt %d: status = %d, want 401", i+1, rec.Code)
			}
		}
		rec := login(env, "192.0.2.1:1234", "", true)
		if got, want := rec.Code, http.StatusTooManyRequests; got != want {
			t.Fatalf("attempt %d: status = %d, want %d", burst+1, got, want)
		}
		errorBody(t, rec)
		// The fake's wait, 1.5s, in whole seconds rounded up.
		if got := rec.Header().Get("Retry-After"); got != "2" {
			t.Errorf("Retry-After = %q, want 2", got)
		}
		if got := env.profiles.logins; got != burst {
			t.Errorf("backend saw %d logins, want %d", got, burst)
		}
	})

	t.Run("FormSharesTheLimitAndShowsAPage", func(t *testing.T) {
		env := newTestEnv(t, slow)
		for range burst {
			login(env, "192.0.2.1:1234", "", true)
		}
		rec := login(env, "192.0.2.1:1234", "", false)
		if got, want := rec.Code, http.StatusTooManyRequests; got != want {
			t.Fatalf("status = %d, want %d", got, want)
		}
		if !strings.Contains(rec.Body.String(), "Too many attempts") {
			t.Errorf("429 page is not friendly:\n%s", rec.Body)
		}
	})

	t.Run("ForgedForwardedForDoesNotReset", func(t *testing.T) {
		env := newTestEnv(t, slow)
		for i := range burst + 3 {
			rec := login(env, "192.0.2.1:1234", "203.0.113."+string(rune('1'+i)), true)
			if i >= burst && rec.Code != http.StatusTooManyRequests {
				t.Fatalf("attempt %d with a new X-Forwarded-For: status = %d, want 429", i+1, rec.Code)
			}
		}
	})

	t.Run("OtherAddressesUnaffected", func(t *testing.T) {
		env := newTestEnv(t, slow)
		for range burst + 1 {
			login(env, "192.0.2.1:1234", "", true)
		}
		if rec := login(env, "192.0.2.2:1234", "", true); rec.Code != http.StatusUnauthorized {
			t.Errorf("another address: status = %d, want 401", rec.Code)
		}
	})

	t.Run("OnlyLoginIsLimited", func(t *testing.T) {
		env := newTestEnv(t, slow)
		for range burst + 1 {
			login(env, "192.0.2.1:1234", "", true)
		}
		if rec := env.do(t, request{path: "/api/me", user: zoeID}); rec.Code != http.StatusOK {
			t.Errorf("/api/me after the login limit: status = %d, want 200", rec.Code)
		}
	})

	t.Run("TrustedProxyExtractor", func(t *testing.T) {
		env := newTestEnv(t, slow, func(c *web.Config) {
			c.IPExtractor = echo.ExtractIPFromXFFHeader(echo.TrustLoopback(true))
		})
		for range burst + 1 {
			login(env, "127.0.0.1:1234", "198.51.100.1", true)
		}
		if rec := login(env, "127.0.0.1:1234", "198.51.100.2", true); rec.Code != http.StatusUnauthorized {
			t.Errorf("a different client behind the trusted proxy: status = %d, want 401", rec.Code)
		}
	})
}

// TestSecurityHeaders: pages carry the browser set; JSON answers, errors
// included, carry the headers that matter for a document that is never
// rendered, and none of the page-only ones. Everything is no-store.
func TestSecurityHeaders(t *testing.T) {
	page := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "same-origin",
		"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
		"Cache-Control":           "no-store",
	}
	api := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "",
		"X-Xss-Protection":        "",
	}
	for _, tt := range []struct {
		r     request
		ctype string
		want  map[string]string
	}{
		{request{path: "/login"}, "text/html", page},
		{request{path: "/profile", user: zoeID}, "text/html", page},
		{request{path: "/sessions", user: zoeID}, "text/html", page},
		{request{path: "/nope"}, "text/html", page},
		{request{path: "/profile?page=0", user: zoeID}, "text/html", page},
		{request{path: "/api/me", user: zoeID}, "application/json", api},
		{request{path: "/api/me/orders?limit=2", user: zoeID}, "application/json", api},
		{request{path: "/api/me/orders?limit=x", user: zoeID}, "application/json", api},
		{request{path: "/api/me"}, "application/json", api},
		{request{path: "/api/nope"}, "application/json", api},
	} {
		t.Run(tt.r.path, func(t *testing.T) {
			rec := newTestEnv(t).do(t, tt.r)
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Fatalf("Content-Type = %q, want %s", ct, tt.ctype)
			}
			for k, v := range tt.want {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if strings.Contains(rec.Body.String(), "<script") || strings.Contains(rec.Body.String(), "style=") {
				t.Error("page has a script or an inline style, which the CSP blocks")
			}
		})
	}
}

// Client addresses share a budget per IPv4 address and per IPv6 /64.
func TestLoginAddressKey(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.2", "192.0.2.2"},
		{"::ffff:192.0.2.1", "192.0.2.1"}, // IPv4-mapped: the IPv4 address
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"}, // same /64
		{"2001:DB8:1:2:0:0:0:7", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"}, // the next /64
		{"fe80::1%eth0", "fe80::/64"},            // a zone does not make a new budget
		{"::1", "::/64"},
		{"", "invalid"},
		{"not-an-ip", "invalid"},
		{"192.0.2.1:1234", "invalid"},
		{"{u:x}", "invalid"},
	} {
		if got := web.AddressKey(tc.ip); got != tc.want {
			t.Errorf("AddressKey(%q) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}

// An account's budget is keyed by its email, trimmed and lowercased as the
// CRM matches it, and hashed: no address in Redis, no brace in a key.
func TestLoginAccountKey(t *testing.T) {
	k := web.AccountKey("alice@example.com")
	for _, same := range []string{"Alice@Example.com", "  alice@example.com\t", "ALICE@EXAMPLE.COM"} {
		if got := web.AccountKey(same); got != k {
			t.Errorf("AccountKey(%q) = %q, want alice's %q", same, got, k)
		}
	}
	for _, other := range []string{"bob@example.com", "alice@example.co", ""} {
		if web.AccountKey(other) == k {
			t.Errorf("AccountKey(%q) is alice's", other)
		}
	}
	for _, email := range []string{"alice@example.com", "{u:x}@x", strings.Repeat("é", 5000)} {
		if got := web.AccountKey(email); len(got) != 32 || strings.ContainsAny(got, "{}@") {
			t.Errorf("AccountKey(%.20q) = %q, want 32 hex digits", email, got)
		}
	}
}

// Wrong passwords for one account are throttled on that account, from
// however many addresses they come; other accounts are not affected, and
// the rightful user's successful logins do not spend the budget.
func TestLoginAccountThrottle(t *testing.T) {
	const burst = 3
	env := newTestEnv(t, func(c *web.Config) { c.LoginByAccount = newFakeLimiter(burst) })
	n := 0
	login := func(email, password string, api bool) *httptest.ResponseRecorder {
		n++
		var req *http.Request
		if api {
			req = httptest.NewRequest(http.MethodPost, "/api/login", strings.NewReader(`{"email":"`+email+`","password":"`+password+`"}`))
			req.Header.Set("Content-Type", "application/json")
		} else {
			form := url.Values{"email": {email}, "password": {password}, "_csrf": {csrfToken}}
			req = httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", echo.MIMEApplicationForm)
			req.AddCookie(&http.Cookie{Name: "_csrf", Value: csrfToken})
		}
		req.RemoteAddr = fmt.Sprintf("198.51.100.%d:1234", n) // a new address every time
		rec := httptest.NewRecorder()
		env.handler.ServeHTTP(rec, req)
		return rec
	}
	// Successful logins give their attempt back: never throttled.
	for i := range 2 * burst {
		if rec := login(zoeEmail, zoePassword, true); rec.Code != http.StatusOK {
			t.Fatalf("right password, login %d: status %d, want 200", i+1, rec.Code)
		}
	}
	for i := range burst {
		if rec := login(zoeEmail, "guess", true); rec.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d, want 401", i+1, rec.Code)
		}
	}
	backend := env.profiles.logins
	for _, variant := range []string{zoeEmail, "ZOE@example.com", " zoe@example.com "} {
		rec := login(variant, "guess", true)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" {
			t.Fatalf("guess for %q over the account's budget: %d (Retry-After %q), want 429 with Retry-After 2",
				variant, rec.Code, rec.Header().Get("Retry-After"))
		}
		errorBody(t, rec)
	}
	rec := login(zoeEmail, "guess", false)
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "Too many attempts") {
		t.Fatalf("form guess over the account's budget: %d, want 429 and the friendly page:\n%s", rec.Code, rec.Body)
	}
	if got := env.profiles.logins; got != backend {
		t.Errorf("throttled attempts reached the backend %d times, want 0", got-backend)
	}
	// The price of an account budget: the rightful user waits too.
	if rec := login(zoeEmail, zoePassword, true); rec.Code != http.StatusTooManyRequests {
		t.Errorf("right password on a spent account budget: %d, want 429", rec.Code)
	}
	// Other accounts are not affected.
	if rec := login("bob@example.com", "bob-secret", true); rec.Code != http.StatusOK {
		t.Errorf("bob: status %d, want 200", rec.Code)
	}
	if rec := login("bob@example.com", "guess", false); rec.Code != http.StatusUnauthorized {
		t.Errorf("bob, wrong password: status %d, want 401", rec.Code)
	}
}

// A login throttle that cannot decide (Redis down) fails closed: 503 with
// Retry-After, JSON on the API, and the backend is not asked.
func TestLoginThrottleStoreDown(t *testing.T) {
	for _, which := range []string{"address", "account"} {
		t.Run(which, func(t *testing.T) {
			env := newTestEnv(t)
			l := map[string]*fakeLimiter{"address": env.byAddress, "account": env.byAccount}[which]
			l.setErr(fmt.Errorf("redisrepo: limiter allow: %w: %w", profile.ErrUnavailable, errBoom))
			req := request{method: http.MethodPost, path: "/api/login", body: `{"email":"zoe@example.com","password":"zoe-secret"}`,
				header: map[string]string{"Content-Type": "application/json"}}
			rec := env.do(t, req)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
				t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After 1", rec.Code, rec.Header().Get("Retry-After"))
			}
			if msg := errorBody(t, rec); strings.Contains(msg, "10.9.8.7") {
				t.Errorf("error %q leaks the internal error", msg)
			}
			if env.profiles.logins != 0 {
				t.Errorf("the backend saw %d logins, want 0", env.profiles.logins)
			}
		})
	}
}

// A refresh inside the cooldown: 429, JSON, Retry-After in whole seconds
// rounded up and at least 1.
func TestRefreshTooSoon(t *testing.T) {
	for _, tc := range []struct {
		wait time.Duration
		want string
	}{
		{10 * time.Second, "10"},
		{9*time.Second + time.Millisecond, "10"},
		{1500 * time.Millisecond, "2"},
		{time.Millisecond, "1"},
		{0, "1"},
	} {
		env := newTestEnv(t)
		env.profiles.setErr(fmt.Errorf("refresh: %w", &profile.TooSoonError{Wait: tc.wait}))
		rec := env.do(t, request{method: http.MethodPost, path: "/api/me/refresh", user: zoeID, csrf: true})
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("wait %v: status %d, want 429", tc.wait, rec.Code)
		}
		if got := rec.Header().Get("Retry-After"); got != tc.want {
			t.Errorf("wait %v: Retry-After %q, want %q", tc.wait, got, tc.want)
		}
		if msg := errorBody(t, rec); !strings.Contains(msg, "moments ago") {
			t.Errorf("wait %v: error %q", tc.wait, msg)
		}
	}
}
