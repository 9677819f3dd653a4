package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/crmtest"
	"github.com/profilecache/profilecache/internal/openapitest"
	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/internal/syncbuf"
	"github.com/profilecache/profilecache/profile"
)

const e2eWebhookSecret = "e2e-webhook-secret-0123456789"

// startWithLogger runs the service on a fresh redis-server with env on top
// of e2eEnv, logging through the logger main builds (newLogger: JSON,
// request ids from the context) at debug level.
func startWithLogger(t *testing.T, env map[string]string) *e2e {
	t.Helper()
	srv := redistest.Start(t)
	vars := e2eEnv(srv)
	maps.Copy(vars, env)
	cfg, err := loadConfig(nil, func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	logger, closeLog := newLogger(logs, slog.LevelDebug)
	t.Cleanup(closeLog)
	a, err := newApp(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	hs := httptest.NewServer(openapitest.Handler(t, a.Handler, openapitest.Options{Credentials: true}))
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service log:\n%s", logs)
		}
	})
	return &e2e{t: t, url: hs.URL, app: a, log: logs,
		redis: srv.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true })}
}

// apiLogin logs in through POST /api/login and returns the Bearer header.
func (e *e2e) apiLogin(email, password string) []string {
	e.t.Helper()
	resp, body := e.do(&http.Client{}, "POST", "/api/login",
		strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)), "Content-Type", "application/json")
	wantStatus(e.t, resp, http.StatusOK)
	var out struct{ Token string }
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.Token == "" {
		e.t.Fatalf("api login: %s: %v", body, err)
	}
	return []string{"Authorization", "Bearer " + out.Token}
}

// firstName is /api/me's first_name as c (with hdr) sees it.
func (e *e2e) firstName(c *http.Client, hdr ...string) string {
	e.t.Helper()
	resp, body := e.do(c, "GET", "/api/me", nil, hdr...)
	wantStatus(e.t, resp, http.StatusOK)
	var me struct {
		FirstName string `json:"first_name"`
	}
	if err := json.Unmarshal([]byte(body), &me); err != nil {
		e.t.Fatalf("/api/me %s: %v", body, err)
	}
	return me.FirstName
}

// With BACKEND_URL the service logs in and shows profiles from the HTTP
// CRM, not the mock.
func TestE2EHTTPBackend(t *testing.T) {
	crm := crmtest.New(t)
	crm.RequireToken("crm-token")
	alice := crm.AddDemo(t, "alice@example.com", "crm-password") // not the mock's password
	e := startWithLogger(t, map[string]string{"BACKEND_URL": crm.URL, "BACKEND_TOKEN": "crm-token"})
	c := e.browser()

	if resp := e.login(c, "alice@example.com", "alice-secret"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("login with the mock's password: status %d, want 401 (the CRM decides)", resp.StatusCode)
	}
	resp := e.login(c, "alice@example.com", "crm-password")
	wantStatus(t, resp, http.StatusSeeOther)
	resp, page := e.do(c, "GET", "/profile", nil)
	wantStatus(t, resp, http.StatusOK)
	for _, want := range []string{"Alice Zoë", "Ångström", "Malmö", "ORD-1-000025"} {
		if !strings.Contains(page, want) {
			t.Errorf("profile page lacks %q", want)
		}
	}
	if got := crm.Hits("orders"); got != 1 {
		t.Errorf("CRM orders hits=%d, want 1 (one load at login)", got)
	}
	if strings.Contains(e.log.String(), `"msg":"demo account"`) {
		t.Error("demo accounts logged although the mock CRM is not in use")
	}

	// A CRM that breaks the contract: 503 naming the backend, never a 500.
	crm.SetIntercept(func(w http.ResponseWriter, _ *http.Request, endpoint string, _ int) bool {
		if endpoint == "orders" {
			_, _ = w.Write([]byte(`{"not":"a list"}`))
			return true
		}
		return false
	})
	resp, body := e.do(&http.Client{}, "POST", "/api/login",
		strings.NewReader(`{"email":"alice@example.com","password":"crm-password"}`), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "customer database sent an invalid response") {
		t.Fatalf("login against a broken CRM: %d %s, want 503 naming the backend", resp.StatusCode, body)
	}
	if !strings.Contains(e.log.String(), "invalid JSON") || !strings.Contains(e.log.String(), "/users/"+alice.String()+"/orders") {
		t.Error("the log does not say what the CRM got wrong")
	}
}

// The CRM says a user's data changed: every session of the user sees the
// new data, loaded from the CRM once.
func TestE2EProfileChangedWebhook(t *testing.T) {
	crm := crmtest.New(t)
	alice := crm.AddDemo(t, "alice@example.com", "alice-secret")
	e := startWithLogger(t, map[string]string{"BACKEND_URL": crm.URL, "WEBHOOK_SECRET": e2eWebhookSecret})

	// Two sessions of one user: a browser and an API client.
	browser := e.browser()
	wantStatus(t, e.login(browser, "alice@example.com", "alice-secret"), http.StatusSeeOther)
	api := &http.Client{}
	bearer := e.apiLogin("alice@example.com", "alice-secret")
	for name, got := range map[string]string{"browser": e.firstName(browser), "api": e.firstName(api, bearer...)} {
		if got != "Alice Zoë" {
			t.Fatalf("%s sees first name %q, want Alice Zoë", name, got)
		}
	}

	crm.Update(alice, func(p *profile.Profile) {
		p.Basic.FirstName = "Alicja"
		p.Orders = append([]profile.Order{{ID: "new-1", Number: "ORD-NEW-1", Date: time.Now().UTC().Truncate(time.Second),
			Status: "neu", Total: 4200, Currency: "EUR", ItemCount: 1, ShippingCity: "Łódź"}}, p.Orders...)
	})
	// The cache does not know yet.
	if got := e.firstName(api, bearer...); got != "Alice Zoë" {
		t.Fatalf("before the webhook: first name %q, want the cached Alice Zoë", got)
	}

	hook := func(secret, body string) int {
		resp, _ := e.do(&http.Client{}, "POST", "/internal/profile-changed", strings.NewReader(body),
			"Content-Type", "application/json", "X-Webhook-Secret", secret)
		return resp.StatusCode
	}
	body := fmt.Sprintf(`{"user_id":%q}`, alice)
	if got := hook("wrong-secret-0123456789", body); got != http.StatusUnauthorized {
		t.Fatalf("wrong secret: status %d, want 401", got)
	}
	if got := hook(e2eWebhookSecret, `{"user_id":"alice"}`); got != http.StatusBadRequest {
		t.Fatalf("bad body: status %d, want 400", got)
	}
	if got := e.firstName(api, bearer...); got != "Alice Zoë" {
		t.Fatalf("after rejected webhooks: first name %q, want Alice Zoë", got)
	}
	loadsBefore := crm.Hits("basic")
	if got := hook(e2eWebhookSecret, body); got != http.StatusNoContent {
		t.Fatalf("webhook: status %d, want 204", got)
	}

	// Redis tells this instance's client-side cache about the drop a few
	// hundred microseconds after the reply (TECH-NOTES §2), so a read in
	// that window may still see the old profile: allow a bounded retry.
	for name, read := range map[string]func() string{
		"browser": func() string { return e.firstName(browser) },
		"api":     func() string { return e.firstName(api, bearer...) },
	} {
		got, retries := read(), 0
		for ; got != "Alicja" && retries < 200; retries++ {
			time.Sleep(10 * time.Millisecond)
			got = read()
		}
		if got != "Alicja" {
			t.Fatalf("%s session after the webhook: first name %q, want Alicja", name, got)
		}
		t.Logf("%s session saw the new data after %d retries", name, retries)
	}
	resp, page := e.do(browser, "GET", "/profile", nil)
	wantStatus(t, resp, http.StatusOK)
	if !strings.Contains(page, "ORD-NEW-1") || !strings.Contains(page, "Łódź") {
		t.Error("profile page after the webhook lacks the new order")
	}
	if got := crm.Hits("basic") - loadsBefore; got != 1 {
		t.Errorf("CRM loads after the webhook: %d, want 1 for both sessions", got)
	}

	// An unknown user is fine: nothing cached, nothing to drop.
	if got := hook(e2eWebhookSecret, fmt.Sprintf(`{"user_id":%q}`, uuid.New())); got != http.StatusNoContent {
		t.Fatalf("webhook for an unknown user: status %d, want 204", got)
	}
}
