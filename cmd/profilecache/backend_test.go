package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/profilecache/profilecache/internal/crmtest"
	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
)

// TestE2EBackendTimeoutAtLogin: a CRM slower than BACKEND_TIMEOUT makes a
// login fail cleanly (a friendly 503 page for the form, 503 JSON for the
// API) and leaves nothing of the user in Redis: no session, no profile, no
// lock. Both the credential check and the profile load are bounded.
func TestE2EBackendTimeoutAtLogin(t *testing.T) { redistest.Targets(t, testE2EBackendTimeoutAtLogin) }

func testE2EBackendTimeoutAtLogin(t *testing.T, target redistest.Target) {
	e := startE2EOn(t, target, map[string]string{"BACKEND_LATENCY": "400ms", "BACKEND_TIMEOUT": "100ms"})

	c := e.browser()
	_, page := e.do(c, "GET", "/login", nil)
	form := url.Values{"email": {"alice@example.com"}, "password": {"alice-secret"}, "_csrf": {csrfFrom(t, page)}}
	resp, body := e.do(c, "POST", "/login", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "briefly unavailable") {
		t.Errorf("form login with a slow CRM: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "pc_session" && ck.MaxAge >= 0 {
			t.Errorf("a failed login set the session cookie %v", ck)
		}
	}

	resp, body = e.do(c, "POST", "/api/login", strings.NewReader(`{"email":"carol@example.com","password":"carol-secret"}`),
		"Content-Type", "application/json")
	if resp.StatusCode != http.StatusServiceUnavailable || !isErrorJSON(body) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("API login with a slow CRM: %d %s (Retry-After %q), want 503 JSON", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}

	for _, email := range []string{"alice@example.com", "carol@example.com"} {
		uid := profile.DemoUserID(email).String()
		if keys := redistest.Keys(t, e.redis, "*{u:"+uid+"}*"); len(keys) != 0 {
			t.Errorf("a failed login of %s left keys in Redis: %v", email, keys)
		}
	}
	// The credential check itself ran out of time: no profile load was
	// even tried. (A CRM that hangs at sign-in must not hang the login.)
	_, metrics := e.do(c, "GET", "/metrics", nil)
	if m := regexp.MustCompile(`(?m)^profilecache_backend_loads_total\{result="(ok|error)"\} [1-9]`).FindString(metrics); m != "" {
		t.Errorf("a profile load ran although authentication had timed out: %s", m)
	}
	if !strings.Contains(e.log.String(), "request failed") {
		t.Error("the failed logins were not logged")
	}
}

// TestE2EBackendErrorAtLogin: a real HTTP CRM that fails (500, a dropped
// connection, a hang) while the profile loads at login: a friendly 503 page
// or 503 JSON, and nothing of the user in Redis afterwards.
func TestE2EBackendErrorAtLogin(t *testing.T) { redistest.Targets(t, testE2EBackendErrorAtLogin) }

func testE2EBackendErrorAtLogin(t *testing.T, target redistest.Target) {
	crm := crmtest.New(t)
	uid := crm.AddDemo(t, "alice@example.com", "crm-password")
	e := startE2EOn(t, target, map[string]string{"BACKEND_URL": crm.URL, "BACKEND_TIMEOUT": "1s"})
	failures := map[string]crmtest.Intercept{
		"500": func(w http.ResponseWriter, _ *http.Request, endpoint string, _ int) bool {
			if endpoint == "invoices" {
				http.Error(w, "database on fire", http.StatusInternalServerError)
				return true
			}
			return false
		},
		"dropped connection": func(w http.ResponseWriter, _ *http.Request, endpoint string, _ int) bool {
			if endpoint != "basic" {
				return false
			}
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return true
		},
		"hang": func(w http.ResponseWriter, r *http.Request, endpoint string, n int) bool {
			if endpoint == "orders" {
				return crm.Hang(w, r, endpoint, n)
			}
			return false
		},
	}
	for name, intercept := range failures {
		crm.SetIntercept(intercept)
		c := e.browser()
		_, page := e.do(c, "GET", "/login", nil)
		form := url.Values{"email": {"alice@example.com"}, "password": {"crm-password"}, "_csrf": {csrfFrom(t, page)}}
		resp, body := e.do(c, "POST", "/login", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
			strings.Contains(body, "database on fire") {
			t.Errorf("%s: form login: %d %s\n%.500s", name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		resp, body = e.do(c, "POST", "/api/login", strings.NewReader(`{"email":"alice@example.com","password":"crm-password"}`),
			"Content-Type", "application/json")
		if resp.StatusCode != http.StatusServiceUnavailable || !isErrorJSON(body) || strings.Contains(body, "on fire") {
			t.Errorf("%s: API login: %d %s, want 503 JSON", name, resp.StatusCode, body)
		}
		if keys := redistest.Keys(t, e.redis, "*{u:"+uid.String()+"}*"); len(keys) != 0 {
			t.Errorf("%s: a failed login left keys in Redis: %v", name, keys)
		}
	}
	// The CRM heals: the next login works without a restart.
	crm.SetIntercept(nil)
	c := e.browser()
	if resp := e.login(c, "alice@example.com", "crm-password"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("login once the CRM works again: %d, want 303", resp.StatusCode)
	}
}
