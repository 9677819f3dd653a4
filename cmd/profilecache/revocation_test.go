package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
)

// Revocation wins over everything in flight (issue 10, point 4): these tests
// drive the real program and read what Redis holds.

// slowEnv makes reloads slow enough to land a revocation in the middle of
// one, and keeps the fence short (2*BACKEND_TIMEOUT + 4*REDIS_TIMEOUT + 4s),
// so that the test can watch it go.
func slowEnv() map[string]string {
	return map[string]string{
		"BACKEND_LATENCY": "500ms",
		"BACKEND_TIMEOUT": "2s",
		"REDIS_TIMEOUT":   "500ms",
		"WEBHOOK_SECRET":  e2eWebhookSecret,
	}
}

// webhook posts one event to the service's CRM webhook.
func webhook(t *testing.T, e *e2e, event string, userID uuid.UUID) {
	t.Helper()
	resp, body := e.do(&http.Client{}, "POST", "/internal/profile-changed",
		strings.NewReader(fmt.Sprintf(`{"user_id":%q,"event":%q}`, userID, event)),
		"Content-Type", "application/json", "X-Webhook-Secret", e2eWebhookSecret)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("webhook %s: %d %s", event, resp.StatusCode, body)
	}
}

// userKeys lists every key of the user, on every node.
func (e *e2e) userKeys(t *testing.T, userID uuid.UUID) []string {
	t.Helper()
	var keys []string
	for addr, node := range e.redis.Nodes() {
		k, err := node.Do(context.Background(), node.B().Keys().Pattern("pc:{u:"+userID.String()+"}:*").Build()).AsStrSlice()
		if err != nil {
			t.Fatalf("KEYS on %s: %v", addr, err)
		}
		keys = append(keys, k...)
	}
	slices.Sort(keys)
	return keys
}

// waitReloadLocked waits until someone holds the user's reload lock: a
// reload is in flight.
func (e *e2e) waitReloadLocked(t *testing.T, userID uuid.UUID) {
	t.Helper()
	lock := "pc:{u:" + userID.String() + "}:lock"
	waitUntil(t, "a reload in flight", 10*time.Second, func() bool {
		n, err := e.redis.Do(context.Background(), e.redis.B().Exists().Key(lock).Build()).AsInt64()
		return err == nil && n == 1
	})
}

// An erasure in the middle of a reload: the reload brings nothing back,
// every token of the user stays dead on every instance, and after the
// fence's short life nothing of the user is left in Redis.
func TestE2EEraseDuringReload(t *testing.T) { redistest.Targets(t, testE2EEraseDuringReload) }

func testE2EEraseDuringReload(t *testing.T, target redistest.Target) {
	a, b := startE2EOn(t, target, slowEnv()), startE2EOn(t, target, slowEnv())
	c := apiClient(t)
	alice := profile.DemoUserID("alice@example.com")
	tokA := apiLoginToken(t, c, a.url, "alice@example.com", "alice-secret")
	tokB := apiLoginToken(t, c, b.url, "alice@example.com", "alice-secret")

	// Drop the cached profile behind the service's back: the next read
	// misses and reloads (500 ms in the CRM).
	if err := a.redis.Do(context.Background(), a.redis.B().Del().Key("pc:{u:"+alice.String()+"}:meta").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	got := make(chan hit, 1)
	go func() { got <- call(c, a.url, http.MethodGet, "/api/me", tokA, "") }()
	a.waitReloadLocked(t, alice)
	webhook(t, b, "erased", alice)

	if h := <-got; h.status != http.StatusUnauthorized || !isErrorJSON(h.body) {
		t.Errorf("the read whose reload was fenced off: %v, want 401 JSON", h)
	}
	for _, e := range []*e2e{a, b} {
		for _, tok := range []string{tokA, tokB} {
			if h := call(c, e.url, http.MethodGet, "/api/me", tok, ""); h.status != http.StatusUnauthorized {
				t.Errorf("an erased user's token: %v, want 401", h)
			}
		}
	}
	fence := "pc:{u:" + alice.String() + "}:fence"
	if keys := a.userKeys(t, alice); !slices.Equal(keys, []string{fence}) {
		t.Errorf("keys of the erased user: %v, want only the fence", keys)
	}
	waitUntil(t, "nothing of the erased user in Redis", 30*time.Second, func() bool {
		return len(a.userKeys(t, alice)) == 0
	})
}

// credentials_changed ends every session on every instance at once, and a
// login whose profile preload is in flight at that moment fails without
// leaving a session behind.
func TestE2ECredentialsChanged(t *testing.T) { redistest.Targets(t, testE2ECredentialsChanged) }

func testE2ECredentialsChanged(t *testing.T, target redistest.Target) {
	a, b := startE2EOn(t, target, slowEnv()), startE2EOn(t, target, slowEnv())
	c := apiClient(t)
	alice := profile.DemoUserID("alice@example.com")
	bob := apiLoginToken(t, c, a.url, "bob@example.com", "bob-secret")
	var tokens []string
	for _, e := range []*e2e{a, b, a} {
		tok := apiLoginToken(t, c, e.url, "alice@example.com", "alice-secret")
		for _, e := range []*e2e{a, b} { // cached on both instances
			if h := call(c, e.url, http.MethodGet, "/api/me", tok, ""); h.status != http.StatusOK {
				t.Fatalf("before: %v", h)
			}
		}
		tokens = append(tokens, tok)
	}

	login := make(chan hit, 1)
	go func() {
		login <- call(c, b.url, http.MethodPost, "/api/login", "", `{"email":"alice@example.com","password":"alice-secret"}`)
	}()
	b.waitReloadLocked(t, alice) // the login's preload
	webhook(t, a, "credentials_changed", alice)

	for _, e := range []*e2e{a, b} {
		for _, tok := range tokens {
			waitUntil(t, "a session refused after credentials_changed", 5*time.Second, func() bool {
				return call(c, e.url, http.MethodGet, "/api/me", tok, "").status == http.StatusUnauthorized
			})
		}
	}
	if h := <-login; h.status != http.StatusUnauthorized || strings.Contains(h.body, "token") {
		t.Errorf("a login in flight during credentials_changed: %v, want 401 and no token", h)
	}
	idx := "pc:{u:" + alice.String() + "}:sessions"
	if n, err := a.redis.Do(context.Background(), a.redis.B().Zcard().Key(idx).Build()).AsInt64(); err != nil || n != 0 {
		t.Errorf("alice's session index holds %d sessions (%v), want none", n, err)
	}
	if h := call(c, a.url, http.MethodGet, "/api/me", bob, ""); h.status != http.StatusOK {
		t.Errorf("another user after alice's credentials_changed: %v", h)
	}
	// A new login after the event works.
	tok := apiLoginToken(t, c, a.url, "alice@example.com", "alice-secret")
	if h := call(c, b.url, http.MethodGet, "/api/me", tok, ""); h.status != http.StatusOK {
		t.Errorf("a login after credentials_changed: %v", h)
	}
}

// A logout that Redis cannot confirm answers 503 and keeps the cookie, so
// that the user can try again; trying again once Redis answers ends the
// session for sure. (Redis paused, not killed: the commands already sent
// run when it resumes, so the session may end late; the client was never
// told it had ended before it did.)
func TestE2ELogoutUnconfirmed(t *testing.T) {
	srv := redistest.Start(t)
	e := startE2EOn(t, srv, map[string]string{"REDIS_TIMEOUT": "300ms"})
	c := apiClient(t)

	browser := e.browser()
	wantStatus(t, e.login(browser, "alice@example.com", "alice-secret"), http.StatusSeeOther)
	_, page := e.do(browser, "GET", "/profile", nil)
	csrf := csrfFrom(t, page)
	tok := apiLoginToken(t, c, e.url, "alice@example.com", "alice-secret")
	if h := call(c, e.url, http.MethodGet, "/api/me", tok, ""); h.status != http.StatusOK {
		t.Fatal(h)
	}
	cookieCleared := func(resp *http.Response) bool {
		for _, ck := range resp.Cookies() {
			if strings.HasSuffix(ck.Name, "pc_session") && (ck.MaxAge < 0 || ck.Value == "") {
				return true
			}
		}
		return false
	}
	hasCookie := func() bool {
		u, _ := url.Parse(e.url)
		for _, ck := range browser.Jar.Cookies(u) {
			if strings.HasSuffix(ck.Name, "pc_session") && ck.Value != "" {
				return true
			}
		}
		return false
	}
	logout := func() *http.Response {
		resp, _ := e.do(browser, "POST", "/logout", strings.NewReader(url.Values{"_csrf": {csrf}}.Encode()),
			"Content-Type", "application/x-www-form-urlencoded")
		return resp
	}

	srv.Pause(t)
	resp := logout()
	apiOut := call(c, e.url, http.MethodPost, "/api/logout", tok, "")
	apiAll := call(c, e.url, http.MethodPost, "/api/logout-all", tok, "")
	srv.Resume(t)

	if resp.StatusCode != http.StatusServiceUnavailable || cookieCleared(resp) || !hasCookie() {
		t.Errorf("form logout with Redis paused: %d, cookie cleared %v; want 503 and the cookie kept", resp.StatusCode, cookieCleared(resp))
	}
	for _, h := range []hit{apiOut, apiAll} {
		if h.status != http.StatusServiceUnavailable || !isErrorJSON(h.body) {
			t.Errorf("%v: want 503 JSON", h)
		}
	}
	waitUntil(t, "Redis answers again", 10*time.Second, func() bool {
		return call(c, e.url, http.MethodGet, "/readyz", "", "").status == http.StatusOK
	})
	// Trying again ends both sessions for sure, whatever became of the
	// commands sent during the pause.
	resp = logout()
	if resp.StatusCode != http.StatusSeeOther || !cookieCleared(resp) {
		t.Errorf("form logout again: %d, cookie cleared %v; want 303 and cleared", resp.StatusCode, cookieCleared(resp))
	}
	if h := call(c, e.url, http.MethodPost, "/api/logout", tok, ""); h.status != http.StatusNoContent && h.status != http.StatusUnauthorized {
		t.Errorf("API logout again: %v, want 204 (or 401: already ended)", h)
	}
	if h := call(c, e.url, http.MethodGet, "/api/me", tok, ""); h.status != http.StatusUnauthorized {
		t.Errorf("after the confirmed logout: %v, want 401", h)
	}
}
