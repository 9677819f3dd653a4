package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/redistest"
)

// Web security checks against the whole service with a plain HTTP client,
// complementing web's handler-level tests.

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

const formType = "application/x-www-form-urlencoded"

// TestE2ECSRF: a state-changing request with the session cookie is refused
// (403, JSON on /api/*, the friendly page elsewhere) without its session's
// token, with another session's token, or from a sibling subdomain or a
// foreign origin even with the right token; and a planted CSRF cookie
// gets no login through. Nothing refused takes effect, and nothing is a 500.
func TestE2ECSRF(t *testing.T) {
	// 127.0.0.1, the test client, is a trusted proxy: X-Forwarded-Proto
	// https then stands for a client that came in over HTTPS. No refresh
	// cooldown: the refresh with the token, right after the login's
	// preload, must get through to its 204.
	e := startE2EOn(t, redistest.Start(t), map[string]string{"TRUSTED_PROXIES": "127.0.0.1", "REFRESH_COOLDOWN": "0"})
	a, b := e.browser(), e.browser()
	for _, c := range []*http.Client{a, b} {
		if resp := e.login(c, "alice@example.com", "alice-secret"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d", resp.StatusCode)
		}
	}
	_, page := e.do(a, "GET", "/sessions", nil)
	tokenA := csrfFrom(t, page)
	_, page = e.do(b, "GET", "/profile", nil)
	tokenB := csrfFrom(t, page)
	if tokenA == tokenB {
		t.Fatal("two sessions got the same CSRF token")
	}
	var list []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	_, body := e.do(a, "GET", "/api/sessions", nil)
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 {
		t.Fatalf("sessions: %s %v", body, err)
	}
	sessionB := list[0].ID
	if list[0].Current {
		sessionB = list[1].ID
	}

	type req struct{ method, path, body string }
	unsafe := []req{
		{"POST", "/api/me/refresh", ""},
		{"PUT", "/api/session/data/cart", "x"},
		{"DELETE", "/api/session/data/cart", ""},
		{"DELETE", "/api/sessions/" + sessionB, ""},
		{"POST", "/api/logout-all", ""},
		{"POST", "/api/logout", ""},
		{"POST", "/logout-all", "-"},
		{"POST", "/sessions/" + sessionB + "/revoke", "-"},
		{"POST", "/logout", "-"},
	}
	refused := []struct {
		name  string
		token string
		hdr   []string
	}{
		{"no token", "", nil},
		{"forged token", "forged", nil},
		{"another session's token", tokenB, nil},
		{"from a sibling subdomain", tokenA, []string{"Sec-Fetch-Site", "same-site"}},
		{"cross-site", tokenA, []string{"Sec-Fetch-Site", "cross-site"}},
		{"from a foreign origin", tokenA, []string{"Origin", "https://evil.example"}},
	}
	for _, r := range unsafe {
		for _, tc := range refused {
			hdr := append([]string(nil), tc.hdr...)
			body := r.body
			if body == "-" { // an HTML form
				body = form("_csrf", tc.token)
				hdr = append(hdr, "Content-Type", formType)
			} else if tc.token != "" {
				hdr = append(hdr, "X-CSRF-Token", tc.token)
			}
			resp, out := e.do(a, r.method, r.path, strings.NewReader(body), hdr...)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s, %s: %d, want 403", r.method, r.path, tc.name, resp.StatusCode)
				continue
			}
			if strings.HasPrefix(r.path, "/api/") {
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.Contains(out, `"error"`) {
					t.Errorf("%s %s, %s: %s, want a JSON error", r.method, r.path, tc.name, out)
				}
			} else if !strings.Contains(out, "That action was blocked") {
				t.Errorf("%s %s, %s: not the friendly page:\n%.300s", r.method, r.path, tc.name, out)
			}
		}
	}
	// Nothing above took effect: both sessions live, nothing was stored.
	for _, c := range []*http.Client{a, b} {
		if resp, _ := e.do(c, "GET", "/api/me", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("a session after the refused requests: %d, want 200", resp.StatusCode)
		}
	}
	if resp, _ := e.do(a, "GET", "/api/session/data/cart", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("session data after refused PUTs: %d, want 404", resp.StatusCode)
	}

	// The session's own token works, from its own origin.
	if resp, out := e.do(a, "POST", "/api/me/refresh", nil, "X-CSRF-Token", tokenA); resp.StatusCode != http.StatusNoContent {
		t.Errorf("refresh with the token: %d %s, want 204", resp.StatusCode, out)
	}
	u, _ := url.Parse(e.url)
	if resp, out := e.do(a, "PUT", "/api/session/data/cart", strings.NewReader("x"), "X-CSRF-Token", tokenA, "Origin", e.url); resp.StatusCode != http.StatusNoContent {
		t.Errorf("put data with the token from %s: %d %s, want 204", u.Host, resp.StatusCode, out)
	}
	if resp, out := e.do(b, "PUT", "/api/session/data/cart", strings.NewReader("y"), "X-CSRF-Token", tokenB, "Sec-Fetch-Site", "same-origin"); resp.StatusCode != http.StatusNoContent {
		t.Errorf("put data with B's token, same-origin: %d %s, want 204", resp.StatusCode, out)
	}
	resp, _ := e.do(a, "POST", "/logout", strings.NewReader(form("_csrf", tokenA)), "Content-Type", formType)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logout with the token: %d, want 303", resp.StatusCode)
	}
	if resp, _ := e.do(a, "GET", "/api/me", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout: %d, want 401", resp.StatusCode)
	}

	// The login form. A pair the server did not make: refused.
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(cookieName, cookieValue, token string, hdr ...string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest("POST", e.url+"/login", strings.NewReader(form("email", "alice@example.com", "password", "alice-secret", "_csrf", token)))
		r.Header.Set("Content-Type", formType)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		if cookieName != "" {
			r.AddCookie(&http.Cookie{Name: cookieName, Value: cookieValue})
		}
		resp, err := anon.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	const planted = "AAAAAAAAAAAAAAAAAAAAAA" // a well-formed nonce of the attacker's choice
	for _, tc := range []struct{ name, cookie, token string }{
		{"unsigned double submit", planted, planted},
		{"a session's token", planted, tokenB},
		{"no cookie", "", tokenB},
	} {
		name := "pc_csrf"
		if tc.cookie == "" {
			name = ""
		}
		if resp := login(name, tc.cookie, tc.token); resp.StatusCode != http.StatusForbidden {
			t.Errorf("form login, %s: %d, want 403", tc.name, resp.StatusCode)
		}
	}

	// Over HTTPS (through the trusted proxy) the cookies are __Host-
	// cookies, and a plain-named one, which a sibling subdomain or a
	// plain-HTTP answer could plant, is not even read.
	https := []string{"X-Forwarded-Proto", "https"}
	resp, page = e.do(anon, "GET", "/login", nil, https...)
	var nonce *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-pc_csrf" {
			nonce = ck
		}
	}
	if nonce == nil || !nonce.Secure || nonce.Path != "/" || nonce.Domain != "" || !nonce.HttpOnly {
		t.Fatalf("GET /login over https: cookies %v, want a Secure HttpOnly __Host-pc_csrf with Path=/", resp.Cookies())
	}
	loginToken := csrfFrom(t, page)
	if resp := login("pc_csrf", nonce.Value, loginToken, https...); resp.StatusCode != http.StatusForbidden {
		t.Errorf("https form login with the pair under the plain cookie name: %d, want 403", resp.StatusCode)
	}
	resp = login("__Host-pc_csrf", nonce.Value, loginToken, append([]string{"Sec-Fetch-Site", "same-site"}, https...)...)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("https form login from a sibling subdomain with a valid pair: %d, want 403", resp.StatusCode)
	}
	resp = login("__Host-pc_csrf", nonce.Value, loginToken, https...)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("https form login with the __Host- pair: %d, want 303", resp.StatusCode)
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-pc_session" {
			session = ck
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.Path != "/" || session.Domain != "" {
		t.Fatalf("https login set %v, want a Secure HttpOnly __Host-pc_session with Path=/", resp.Cookies())
	}
	me := func(name string, hdr ...string) int {
		r, _ := http.NewRequest("GET", e.url+"/api/me", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		r.AddCookie(&http.Cookie{Name: name, Value: session.Value})
		resp, err := anon.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := me("__Host-pc_session", https...); got != http.StatusOK {
		t.Errorf("the __Host- session cookie over https: %d, want 200", got)
	}
	if got := me("pc_session", https...); got != http.StatusUnauthorized {
		t.Errorf("the same JWT under the plain name over https: %d, want 401", got)
	}

	// None of it was a 500.
	for _, line := range strings.Split(e.log.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"status":500`) {
			t.Errorf("log: %.300s", line)
		}
	}
}

func TestE2ELoginRateLimit(t *testing.T) {
	e := startE2EOn(t, redistest.Start(t), map[string]string{"LOGIN_RATE": "0.001", "LOGIN_BURST": "3"})
	c := apiClient(t)
	// An over-long password fails without a bcrypt comparison (fast) and
	// counts against the limit like any attempt.
	body := `{"email":"alice@example.com","password":"` + strings.Repeat("p", 2000) + `"}`
	attempt := func(xff string) int {
		req, _ := http.NewRequest("POST", e.url+"/api/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
			req.Header.Set("X-Real-IP", xff)
			req.Header.Set("Forwarded", "for="+xff)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 3 {
		if got := attempt(""); got != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, got)
		}
	}
	for _, xff := range []string{"", "203.0.113.7", "198.51.100.1, 203.0.113.8", "10.0.0.1"} {
		if got := attempt(xff); got != http.StatusTooManyRequests {
			t.Errorf("after the burst, with X-Forwarded-For %q: %d, want 429", xff, got)
		}
	}
}

// An unknown email and a wrong password get the same status and body (the
// form's page is compared in web's TestLoginSameAnswer), and cost the same
// work (the mock CRM compares against a dummy bcrypt hash of
// the same cost, see profile's TestDummyHashCostsTheSame). Timings are only
// logged: a 2-core shared box is no stopwatch.
func TestE2ELoginSameAnswer(t *testing.T) {
	e := startE2E(t)
	c := apiClient(t)
	answer := func(email string) (int, string, time.Duration) {
		start := time.Now()
		h := call(c, e.url, http.MethodPost, "/api/login", "", `{"email":"`+email+`","password":"not-the-password"}`)
		return h.status, h.body, time.Since(start)
	}
	ks, kb, known := answer("alice@example.com")
	us, ub, unknown := answer("nobody@example.com")
	if ks != http.StatusUnauthorized || ks != us || kb != ub {
		t.Fatalf("wrong password: %d %s; unknown email: %d %s; want the same 401", ks, kb, us, ub)
	}
	t.Logf("wrong password %v, unknown email %v (ratio %.2f)", known, unknown, float64(unknown)/float64(known))

}

func TestE2ESecurityHeadersAndLimits(t *testing.T) {
	e := startE2E(t)
	c := e.browser()
	if resp := e.login(c, "bob@example.com", "bob-secret"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	for _, path := range []string{"/login", "/profile", "/sessions", "/no-such-page"} {
		resp, body := e.do(c, "GET", path, nil)
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: Content-Type %q, want HTML", path, resp.Header.Get("Content-Type"))
			continue
		}
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" ||
			!strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") ||
			!strings.Contains(csp, "script-src 'none'") || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", path, h)
		}
		if strings.Contains(body, "<script") {
			t.Errorf("%s: the page has a script", path)
		}
	}

	big := bytes.Repeat([]byte("a"), 1<<20+1)
	for _, tt := range []struct{ path, ctype string }{
		{"/api/login", "application/json"},
		{"/login", formType},
	} {
		resp, body := e.do(c, "POST", tt.path, bytes.NewReader(big), "Content-Type", tt.ctype)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with 1 MiB + 1 byte: %d %.100s, want 413", tt.path, resp.StatusCode, body)
		}
	}
	// Just under the limit is not refused for its size.
	ok := append([]byte(`{"email":"bob@example.com","password":"bob-secret","pad":"`), bytes.Repeat([]byte("a"), 1<<20-100)...)
	ok = append(ok, `"}`...)
	if resp, body := e.do(c, "POST", "/api/login", bytes.NewReader(ok), "Content-Type", "application/json"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a body under 1 MiB with an unknown field: %d %.200s, want 400 (not 413)", resp.StatusCode, body)
	}
}

// TestE2ENoSecretsInLogs drives logins, requests, failures and logouts
// through the whole service with debug logging on, and looks for every
// credential in every log line: JWTs (whole or by their signature), the
// session tokens inside them, the signing key, passwords, CSRF tokens.
func TestE2ENoSecretsInLogs(t *testing.T) {
	prev := strings.Repeat("previous-key-", 3)
	e := startE2EOn(t, redistest.Start(t), map[string]string{"SESSION_SECRET_PREVIOUS": prev, "LOGIN_BURST": "100"})
	secrets := []string{e2eSecret, prev, "alice-secret", "bob-secret", "wrong-password"}

	// Browser: form login, pages, a forged post, logout.
	b := e.browser()
	e.login(b, "alice@example.com", "wrong-password")
	e.login(b, "alice@example.com", "alice-secret")
	u, _ := url.Parse(e.url)
	for _, ck := range b.Jar.Cookies(u) {
		secrets = append(secrets, ck.Value)
	}
	_, page := e.do(b, "GET", "/profile", nil)
	secrets = append(secrets, csrfFrom(t, page))
	e.do(b, "GET", "/sessions", nil)
	e.do(b, "POST", "/api/me/refresh", nil) // no CSRF token: 403
	e.do(b, "POST", "/logout", strings.NewReader(form("_csrf", csrfFrom(t, page))), "Content-Type", formType)
	for _, ck := range b.Jar.Cookies(u) {
		secrets = append(secrets, ck.Value)
	}

	// API: login, reads, a tampered token, a replayed token, logout.
	c := apiClient(t)
	tok := apiLoginToken(t, c, e.url, "bob@example.com", "bob-secret")
	secrets = append(secrets, tok)
	parts := strings.Split(tok, ".")
	secrets = append(secrets, parts[1], parts[2])
	var claims struct{ SID string }
	if p, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil && json.Unmarshal(p, &claims) == nil && claims.SID != "" {
		secrets = append(secrets, claims.SID)
	} else {
		t.Fatalf("no sid claim in the JWT payload %q", parts[1])
	}
	call(c, e.url, http.MethodGet, "/api/me", tok, "")
	call(c, e.url, http.MethodGet, "/api/me/orders?offset=-1", tok, "")
	call(c, e.url, http.MethodPut, "/api/session/data/k", tok, "v")
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	call(c, e.url, http.MethodGet, "/api/me", tampered, "")
	call(c, e.url, http.MethodGet, "/api/me", "not-a-jwt-"+claims.SID, "")
	call(c, e.url, http.MethodPost, "/api/logout", tok, "")
	call(c, e.url, http.MethodGet, "/api/me", tok, "") // revoked: 401
	call(c, e.url, http.MethodPost, "/api/login", "", `{"email":"bob@example.com","password":"`+strings.Repeat("x", 2000)+`"}`)

	logs := e.log.String()
	if n := strings.Count(logs, "\n"); n < 20 {
		t.Fatalf("only %d log lines: is the log captured?\n%s", n, logs)
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(logs, s) {
			t.Errorf("a log line contains the credential %.12q...", s)
		}
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "eyJ") { // the start of any base64 JSON: a JWT
			t.Errorf("a log line looks like it holds a JWT: %.300s", line)
		}
	}
}
