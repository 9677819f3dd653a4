package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/session"
)

// embedder is a Go service that is not profilecache: plain net/http, with
// package session on profilecache's Redis. GET /whoami answers the
// identity and a little of the cached profile.
func embedder(t *testing.T, redisURL string) string {
	t.Helper()
	v, err := session.New(session.Config{RedisURL: redisURL, Secret: []byte(e2eSecret)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		id, _ := session.FromContext(r.Context())
		view, err := v.Read(r.Context(), id.UserID, profile.Query{Basic: true, Orders: &profile.Page{Offset: 0, Limit: 2}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"user": id.UserID.String(), "session": id.SessionID, "email": view.Basic.Email,
			"first_order": view.Orders.Items[0].Number, "orders": view.Orders.Total,
		})
	})
	srv := httptest.NewServer(v.Middleware(mux))
	t.Cleanup(srv.Close)
	return srv.URL
}

// getJSON GETs u with the headers hdr (name, value, ...) and decodes the
// JSON answer, if any.
func getJSON(t *testing.T, u string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestEmbeddedLibrary: a service using package session beside the real
// profilecache, on the same Redis (single and cluster), accepts
// profilecache's logins with the right identity and profile, and refuses
// them once profilecache logs them out.
func TestEmbeddedLibrary(t *testing.T) { redistest.Targets(t, testEmbeddedLibrary) }

func testEmbeddedLibrary(t *testing.T, target redistest.Target) {
	e := startE2EOn(t, target, nil)
	other := embedder(t, target.URL())
	whoami := func(hdr ...string) (int, map[string]any) { return getJSON(t, other+"/whoami", hdr...) }

	// A browser's login on profilecache: its cookie works there.
	browser := e.browser()
	wantStatus(t, e.login(browser, "alice@example.com", "alice-secret"), http.StatusSeeOther)
	u, _ := url.Parse(e.url)
	var cookie string
	for _, ck := range browser.Jar.Cookies(u) {
		if ck.Name == "pc_session" {
			cookie = ck.Name + "=" + ck.Value
		}
	}
	_, body := e.do(browser, "GET", "/api/sessions", nil)
	var sessions []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	if err := json.Unmarshal([]byte(body), &sessions); err != nil || len(sessions) != 1 {
		t.Fatalf("/api/sessions: %s", body)
	}
	status, got := whoami("Cookie", cookie)
	want := map[string]any{
		"user": profile.DemoUserID("alice@example.com").String(), "session": sessions[0].ID, "email": "alice@example.com",
		"first_order": "ORD-1-000025", "orders": float64(25),
	}
	if status != http.StatusOK || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the other service with profilecache's cookie: %d %v, want 200 %v", status, got, want)
	}
	if status, _ := whoami(); status != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d, want 401", status)
	}

	// A logout on profilecache ends the session there.
	_, page := e.do(browser, "GET", "/sessions", nil)
	resp, _ := e.do(browser, "POST", "/logout", strings.NewReader(url.Values{"_csrf": {csrfFrom(t, page)}}.Encode()),
		"Content-Type", "application/x-www-form-urlencoded")
	wantStatus(t, resp, http.StatusSeeOther)
	eventually(t, "the other service refuses the logged-out cookie", func() bool {
		status, _ := whoami("Cookie", cookie)
		return status == http.StatusUnauthorized
	})

	// API clients' Bearer tokens too, and logout-all ends them all.
	b1, b2 := e.apiLogin("alice@example.com", "alice-secret"), e.apiLogin("alice@example.com", "alice-secret")
	for _, b := range [][]string{b1, b2} {
		if status, got := whoami(b...); status != http.StatusOK || got["email"] != "alice@example.com" {
			t.Fatalf("Bearer: %d %v", status, got)
		}
	}
	resp, _ = e.do(&http.Client{}, "POST", "/api/logout-all", nil, b1...)
	wantStatus(t, resp, http.StatusOK)
	for _, b := range [][]string{b1, b2} {
		eventually(t, "the other service refuses every session after logout-all", func() bool {
			status, _ := whoami(b...)
			return status == http.StatusUnauthorized
		})
	}
}

// TestForwardAuthHotCostsNoRedisCommand: a warm /auth is served from the
// client-side cache like /api/me: not one data command reaches Redis.
func TestForwardAuthHotCostsNoRedisCommand(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true })
	a := newInstance(t, srv)
	tok := a.login("alice@example.com", "alice-secret")
	for range 2 {
		a.get("/auth", tok)
	}
	before := dataCommands(t, raw)
	for range 20 {
		a.get("/auth", tok)
	}
	if got := dataCommands(t, raw) - before; got != 0 {
		t.Fatalf("20 hot /auth requests ran %d data commands in Redis, want 0", got)
	}
	// And the check is real: a cold instance does reach Redis.
	b := newInstance(t, srv)
	before = dataCommands(t, raw)
	b.get("/auth", tok)
	if got := dataCommands(t, raw) - before; got == 0 {
		t.Fatal("a cold /auth ran no data command: the counter sees nothing")
	}
}
