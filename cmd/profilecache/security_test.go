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

// Web security checks against the whole service with a plain HTTP client
// (no Sec-Fetch-Site header, so echo's CSRF middleware really checks the
// token), complementing web's handler-level tests.

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

const formType = "application/x-www-form-urlencoded"

func TestE2ECSRF(t *testing.T) {
	// No refresh cooldown: the refresh with the token, right after the
	// login's preload, must get through to its 204.
	e := startE2EOn(t, redistest.Start(t), map[string]string{"REFRESH_COOLDOWN": "0"})
	c := e.browser()
	if resp := e.login(c, "alice@example.com", "alice-secret"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	_, page := e.do(c, "GET", "/profile", nil)
	token := csrfFrom(t, page)

	for _, tt := range []struct {
		name, method, path, body string
		hdr                      []string
	}{
		{"refresh", "POST", "/api/me/refresh", "", nil},
		{"put data", "PUT", "/api/session/data/cart", "x", nil},
		{"logout-all form", "POST", "/logout-all", "", []string{"Content-Type", formType}},
		{"logout form", "POST", "/logout", "", []string{"Content-Type", formType}},
		{"wrong token", "POST", "/api/me/refresh", "", []string{"X-CSRF-Token", "forged"}},
		{"wrong form token", "POST", "/logout", form("_csrf", "forged"), []string{"Content-Type", formType}},
	} {
		var body *strings.Reader
		body = strings.NewReader(tt.body)
		resp, out := e.do(c, tt.method, tt.path, body, tt.hdr...)
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s without a valid CSRF token: %d %s, want 400 or 403", tt.name, resp.StatusCode, out)
		}
	}
	// Nothing above took effect: the session still works.
	if resp, _ := e.do(c, "GET", "/api/me", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the session after forged requests: %d, want 200", resp.StatusCode)
	}
	if resp, out := e.do(c, "POST", "/api/me/refresh", nil, "X-CSRF-Token", token); resp.StatusCode != http.StatusNoContent {
		t.Errorf("refresh with the token: %d %s, want 204", resp.StatusCode, out)
	}
	if resp, out := e.do(c, "PUT", "/api/session/data/cart", strings.NewReader("x"), "X-CSRF-Token", token); resp.StatusCode != http.StatusNoContent {
		t.Errorf("put data with the token: %d %s, want 204", resp.StatusCode, out)
	}
	resp, _ := e.do(c, "POST", "/logout", strings.NewReader(form("_csrf", token)), "Content-Type", formType)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logout with the token: %d, want 303", resp.StatusCode)
	}
	if resp, _ := e.do(c, "GET", "/api/me", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout: %d, want 401", resp.StatusCode)
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
	e.do(b, "POST", "/api/me/refresh", nil) // no CSRF token: 400
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
