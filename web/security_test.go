package web_test

import (
	"fmt"
	"maps"
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

// TestCSRF: every unsafe request from a browser must come from this site
// (CrossOriginProtection) and, unless it is a Bearer or JSON-login call,
// carry a token this server made for exactly this session (or, on the login
// form, for exactly this nonce cookie).
func TestCSRF(t *testing.T) {
	form := url.Values{"email": {zoeEmail}, "password": {zoePassword}}
	loginForm := func(token string) string { return form.Encode() + "&_csrf=" + url.QueryEscape(token) }
	withCookie := func(name, value string) func(*http.Request) {
		return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: name, Value: value}) }
	}
	nonceCookie := withCookie(web.CSRFCookieName, testNonce)
	signedIn := func(r *http.Request) { r.Header.Set(hdrUser, zoeID.String()) }
	hdr := func(k, v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set(k, v) } }
	all := func(fs ...func(*http.Request)) func(*http.Request) {
		return func(r *http.Request) {
			for _, f := range fs {
				f(r)
			}
		}
	}
	good := sessionToken(currentSession)
	secure := func(c *web.Config) { c.CSRFCookieSecure = true }
	// An attacker with their own key: a well-formed token that no key of
	// ours made.
	attackerKey := []byte("attacker-key-attacker-key-attacker-key")

	for _, tc := range []struct {
		name       string
		method     string
		path       string
		body       string
		setup      func(*http.Request)
		mod        func(*web.Config)
		wantStatus int
	}{
		// The login form: a signed double-submit pair.
		{"FormLoginToken", "POST", "/login", loginForm(loginToken), nonceCookie, nil, http.StatusSeeOther},
		{"FormLoginNoToken", "POST", "/login", form.Encode(), nonceCookie, nil, http.StatusForbidden},
		{"FormLoginNoCookie", "POST", "/login", loginForm(loginToken), nil, nil, http.StatusForbidden},
		{"FormLoginWrongToken", "POST", "/login", loginForm("wrong"), nonceCookie, nil, http.StatusForbidden},
		// Classic double submit: the same value in cookie and form, as a
		// sibling subdomain could plant. Not a pair this server made.
		{"FormLoginPlantedUnsignedPair", "POST", "/login", loginForm(testNonce), nonceCookie, nil, http.StatusForbidden},
		{"FormLoginPairSignedByAnotherKey", "POST", "/login", loginForm(web.LoginCSRFToken(attackerKey, testNonce)), nonceCookie, nil, http.StatusForbidden},
		// Another nonce's token.
		{"FormLoginOtherNoncesToken", "POST", "/login", loginForm(web.LoginCSRFToken(testCSRFKey, "BBECAwQFBgcICQoLDA0ODw")), nonceCookie, nil, http.StatusForbidden},
		// A session's token is not a login token, even for an equal value.
		{"FormLoginSessionTokenForTheNonce", "POST", "/login", loginForm(web.SessionCSRFToken(testCSRFKey, testNonce)), nonceCookie, nil, http.StatusForbidden},
		// Sec-Fetch-Site same-origin is not a pass without a token (as it
		// was with echo's middleware): the token is checked too.
		{"FormLoginSameOriginNoToken", "POST", "/login", form.Encode(), all(nonceCookie, hdr("Sec-Fetch-Site", "same-origin")), nil, http.StatusForbidden},
		{"FormLoginSameOrigin", "POST", "/login", loginForm(loginToken), all(nonceCookie, hdr("Sec-Fetch-Site", "same-origin")), nil, http.StatusSeeOther},
		{"FormLoginOriginIsHost", "POST", "/login", loginForm(loginToken), all(nonceCookie, hdr("Origin", "http://example.com")), nil, http.StatusSeeOther},
		// From another site, or a sibling subdomain: refused with a valid pair.
		{"FormLoginCrossSite", "POST", "/login", loginForm(loginToken), all(nonceCookie, hdr("Sec-Fetch-Site", "cross-site")), nil, http.StatusForbidden},
		{"FormLoginSameSite", "POST", "/login", loginForm(loginToken), all(nonceCookie, hdr("Sec-Fetch-Site", "same-site")), nil, http.StatusForbidden},
		{"FormLoginForeignOrigin", "POST", "/login", loginForm(loginToken), all(nonceCookie, hdr("Origin", "https://evil.example")), nil, http.StatusForbidden},
		{"FormLoginSiblingOrigin", "POST", "/login", loginForm(loginToken), all(nonceCookie, hdr("Origin", "http://sub.example.com")), nil, http.StatusForbidden},
		// Secure: only the __Host- cookie counts; a plain one (plantable by
		// a sibling subdomain or over plain HTTP) is ignored.
		{"SecureFormLoginHostCookie", "POST", "/login", loginForm(loginToken), withCookie("__Host-"+web.CSRFCookieName, testNonce), secure, http.StatusSeeOther},
		{"SecureFormLoginPlantedPlainCookie", "POST", "/login", loginForm(loginToken), nonceCookie, secure, http.StatusForbidden},

		// Cookie-authenticated calls: the session's token.
		{"CookieAuthAPIHeaderToken", "POST", "/api/me/refresh", "", all(signedIn, hdr("X-CSRF-Token", good)), nil, http.StatusNoContent},
		{"CookieAuthAPIFormToken", "POST", "/api/me/refresh", "_csrf=" + good, signedIn, nil, http.StatusNoContent},
		{"CookieAuthAPINoToken", "POST", "/api/me/refresh", "", signedIn, nil, http.StatusForbidden},
		{"CookieAuthAPIEmptyToken", "POST", "/api/me/refresh", "", all(signedIn, hdr("X-CSRF-Token", "")), nil, http.StatusForbidden},
		{"OtherSessionsToken", "POST", "/api/me/refresh", "", all(signedIn, hdr("X-CSRF-Token", sessionToken(otherSession))), nil, http.StatusForbidden},
		{"TokenSignedByAnotherKey", "POST", "/api/me/refresh", "", all(signedIn, hdr("X-CSRF-Token", web.SessionCSRFToken(attackerKey, currentSession))), nil, http.StatusForbidden},
		{"LoginPairOnASession", "POST", "/api/me/refresh", "", all(signedIn, nonceCookie, hdr("X-CSRF-Token", loginToken)), nil, http.StatusForbidden},
		{"OverlongToken", "POST", "/api/me/refresh", "", all(signedIn, hdr("X-CSRF-Token", strings.Repeat(good, 1000))), nil, http.StatusForbidden},
		{"TokenNotBase64", "POST", "/api/me/refresh", "", all(signedIn, hdr("X-CSRF-Token", strings.Repeat("!", len(good)))), nil, http.StatusForbidden},
		{"CookieAuthDeleteNoToken", "DELETE", "/api/sessions/" + otherSession, "", signedIn, nil, http.StatusForbidden},
		{"PutDataToken", "PUT", "/api/session/data/x", "", all(signedIn, hdr("X-CSRF-Token", good)), nil, http.StatusNoContent},
		{"PutDataSameSite", "PUT", "/api/session/data/x", "", all(signedIn, hdr("X-CSRF-Token", good), hdr("Sec-Fetch-Site", "same-site")), nil, http.StatusForbidden},
		{"PutDataForeignOrigin", "PUT", "/api/session/data/x", "", all(signedIn, hdr("X-CSRF-Token", good), hdr("Origin", "https://evil.example")), nil, http.StatusForbidden},
		{"LogoutAllNoToken", "POST", "/logout-all", "", signedIn, nil, http.StatusForbidden},
		{"LogoutAllToken", "POST", "/logout-all", "_csrf=" + good, signedIn, nil, http.StatusSeeOther},
		{"LogoutAllSameSite", "POST", "/logout-all", "_csrf=" + good, all(signedIn, hdr("Sec-Fetch-Site", "same-site")), nil, http.StatusForbidden},
		{"LogoutAllForeignOrigin", "POST", "/logout-all", "_csrf=" + good, all(signedIn, hdr("Origin", "https://evil.example")), nil, http.StatusForbidden},
		{"RevokeSameSite", "POST", "/sessions/" + otherSession + "/revoke", "_csrf=" + good, all(signedIn, hdr("Sec-Fetch-Site", "same-site")), nil, http.StatusForbidden},
		{"RevokeForeignOrigin", "POST", "/sessions/" + otherSession + "/revoke", "_csrf=" + good, all(signedIn, hdr("Origin", "https://evil.example")), nil, http.StatusForbidden},
		{"LogoutNoToken", "POST", "/logout", "", signedIn, nil, http.StatusForbidden},
		{"LogoutCrossSite", "POST", "/logout", "_csrf=" + good, all(signedIn, hdr("Sec-Fetch-Site", "cross-site")), nil, http.StatusForbidden},

		// A form body that cannot be parsed is the client's mistake.
		{"MalformedFormBody", "POST", "/logout-all", "_csrf=%zz", signedIn, nil, http.StatusBadRequest},
		{"MalformedLoginFormBody", "POST", "/login", "email=%zz&_csrf=" + loginToken, nonceCookie, nil, http.StatusBadRequest},
		{"MultipartFormToken", "POST", "/logout-all", "--b\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n" + good + "\r\n--b--\r\n",
			all(signedIn, hdr("Content-Type", "multipart/form-data; boundary=b")), nil, http.StatusSeeOther},

		// API clients with a Bearer token need none.
		{"BearerAPI", "POST", "/api/me/refresh", "", all(signedIn, hdr("Authorization", "Bearer some.jwt.here")), nil, http.StatusNoContent},
		{"BearerSchemeIsCaseInsensitive", "POST", "/api/me/refresh", "", all(signedIn, hdr("Authorization", "bearer some.jwt.here")), nil, http.StatusNoContent},
		{"BasicAuthIsNotBearer", "POST", "/api/me/refresh", "", all(signedIn, hdr("Authorization", "Basic dTpw")), nil, http.StatusForbidden},
		{"EmptyBearerIsNotBearer", "POST", "/api/me/refresh", "", all(signedIn, hdr("Authorization", "Bearer ")), nil, http.StatusForbidden},
		// The JSON login has no session to ride on and no form content type.
		{"APILoginNoToken", "POST", "/api/login", `{"email":"zoe@example.com","password":"zoe-secret"}`, hdr("Content-Type", "application/json"), nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*web.Config)
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			env := newTestEnv(t, mods...)
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
			if rec.Code != http.StatusForbidden {
				return
			}
			// Refused: nothing happened, and the answer says so in the
			// route's language.
			if n := len(env.sessions.ids(zoeID)); n != 2 {
				t.Errorf("a refused request changed the sessions: %d left", n)
			}
			if env.profiles.logins != 0 || env.profiles.refreshes != 0 {
				t.Errorf("a refused request reached the service")
			}
			if c := cookie(rec, cookieName); c != nil {
				t.Errorf("a refused request set the session cookie: %v", c)
			}
			if strings.HasPrefix(tc.path, "/api/") {
				errorBody(t, rec)
			} else if !strings.Contains(rec.Body.String(), "That action was blocked") {
				t.Errorf("403 page is not the friendly one:\n%s", rec.Body)
			}
		})
	}
}

// TestEveryUnsafeRouteNeedsCSRF walks the routes: whatever unsafe route is
// added, a signed-in request without a token, and one from a sibling
// subdomain with the right token, are refused. Only the JSON login and the
// webhook are exempt (see csrf.go).
func TestEveryUnsafeRouteNeedsCSRF(t *testing.T) {
	exempt := map[string]bool{"POST /api/login": true, "POST /internal/profile-changed": true}
	env := newTestEnv(t, func(c *web.Config) {
		c.Changes = &fakeChanges{}
		c.WebhookSecret = strings.Repeat("w", web.MinWebhookSecretLen)
	})
	checked := 0
	for _, r := range env.server.Handler().Routes() {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, echo.RouteNotFound:
			continue
		}
		// Forward auth answers every method (Envoy keeps the upstream's)
		// and changes nothing: TestForwardAuth.
		if exempt[r.Method+" "+r.Path] || r.Path == "/auth" || r.Path == "/auth/*" {
			continue
		}
		path := strings.NewReplacer(":id", otherSession, ":key", "k").Replace(r.Path)
		if strings.HasSuffix(path, "/") {
			path += "k"
		}
		checked++
		for _, tc := range []struct {
			name  string
			token string
			hdr   map[string]string
		}{
			{"no token", "", nil},
			{"same-site with the token", sessionToken(currentSession), map[string]string{"Sec-Fetch-Site": "same-site"}},
			{"foreign origin with the token", sessionToken(currentSession), map[string]string{"Origin": "https://evil.example"}},
		} {
			h := map[string]string{hdrUser: zoeID.String()}
			maps.Copy(h, tc.hdr)
			if tc.token != "" {
				h["X-CSRF-Token"] = tc.token
			}
			rec := env.do(t, request{method: r.Method, path: path, header: h, body: "v"})
			if rec.Code != http.StatusForbidden {
				t.Errorf("%s %s, %s: status = %d, want 403", r.Method, path, tc.name, rec.Code)
			}
		}
	}
	if checked < 10 {
		t.Errorf("checked %d unsafe routes, want every one of them (at least 10)", checked)
	}
	if n := len(env.sessions.ids(zoeID)); n != 2 {
		t.Errorf("refused requests changed the sessions: %d left", n)
	}
}

// TestCSRFRoundTrip logs in as a plain HTTP client would: GET the form,
// then POST it with the cookie and the token from the page; then uses the
// token of the signed-in page.
func TestCSRFRoundTrip(t *testing.T) {
	env := newTestEnv(t)
	rec := env.do(t, request{path: "/login"})
	nonce := cookie(rec, web.CSRFCookieName)
	if nonce == nil {
		t.Fatal("no CSRF cookie")
	}
	token := formToken(t, rec.Body.String())

	form := url.Values{"email": {zoeEmail}, "password": {zoePassword}, "_csrf": {token}}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", echo.MIMEApplicationForm)
	req.AddCookie(nonce)
	rec = httptest.NewRecorder()
	env.handler.ServeHTTP(rec, req)
	if got, want := rec.Code, http.StatusSeeOther; got != want {
		t.Fatalf("status = %d, want %d; body %s", got, want, rec.Body)
	}
	if cookie(rec, cookieName) == nil {
		t.Error("no session cookie after login")
	}

	// The pages of a session carry its token, and it works on the API.
	for _, sid := range []string{currentSession, otherSession} {
		page := env.do(t, request{path: "/sessions", user: zoeID, header: map[string]string{hdrSession: sid}})
		tok := formToken(t, page.Body.String())
		if tok != sessionToken(sid) {
			t.Errorf("session %s: page token %q, want the session's", sid, tok)
		}
		rec := env.do(t, request{method: "PUT", path: "/api/session/data/x", user: zoeID, body: "v",
			header: map[string]string{hdrSession: sid, "X-CSRF-Token": tok}})
		if rec.Code != http.StatusNoContent {
			t.Errorf("session %s: PUT with its page's token: %d, want 204", sid, rec.Code)
		}
		other := map[string]string{currentSession: otherSession, otherSession: currentSession}[sid]
		rec = env.do(t, request{method: "PUT", path: "/api/session/data/x", user: zoeID, body: "v",
			header: map[string]string{hdrSession: other, "X-CSRF-Token": tok}})
		if rec.Code != http.StatusForbidden {
			t.Errorf("session %s's token on session %s: %d, want 403", sid, other, rec.Code)
		}
	}
}

// formToken is the value of the page's _csrf field.
func formToken(t *testing.T, body string) string {
	t.Helper()
	const marker = `name="_csrf" value="`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no _csrf field in the page:\n%s", body)
	}
	token := body[i+len(marker):]
	return token[:strings.IndexByte(token, '"')]
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
			req = httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("email=zoe%40example.com&password=wrong&_csrf="+loginToken))
			req.Header.Set("Content-Type", echo.MIMEApplicationForm)
			req.AddCookie(loginCookie())
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
			form := url.Values{"email": {email}, "password": {password}, "_csrf": {loginToken}}
			req = httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", echo.MIMEApplicationForm)
			req.AddCookie(loginCookie())
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
