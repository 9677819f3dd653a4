package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/openapitest"
	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/internal/syncbuf"
	"github.com/profilecache/profilecache/profile"
)

// e2e is the whole service, as main wires it, on a real Redis.
type e2e struct {
	t     *testing.T
	url   string
	app   *app
	redis rueidis.Client  // an uncached client that reads what Redis holds
	log   *syncbuf.Buffer // everything the app logged, as JSON lines
}

// startE2E runs the service on a fresh single redis-server.
func startE2E(t *testing.T) *e2e {
	t.Helper()
	return startE2EOn(t, redistest.Start(t), nil)
}

// e2eSecret is the e2e services' SESSION_SECRET.
var e2eSecret = strings.Repeat("e2e-secret-", 4)

// e2eEnv is the environment startE2EOn configures the service with.
func e2eEnv(target redistest.Target) map[string]string {
	return map[string]string{
		"REDIS_URL":      target.URL(),
		"SESSION_SECRET": e2eSecret,
		"LOGIN_BURST":    "100",
	}
}

// startE2EOn runs the service on target, with env overriding e2eEnv's
// variables (an empty value unsets one). It fails t unless the service's
// Redis client runs in the target's mode: on a cluster, rueidis then
// refuses every cross-slot command, so a green run proves there is none.
func startE2EOn(t *testing.T, target redistest.Target, env map[string]string) *e2e {
	t.Helper()
	vars := e2eEnv(target)
	maps.Copy(vars, env)
	cfg, err := loadConfig(nil, func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if want := `"mode":"` + string(target.Mode()) + `"`; !strings.Contains(logs.String(), want) {
		t.Fatalf("the service's Redis client is not in %s mode; its log:\n%s", target.Mode(), logs)
	}
	// Every exchange of the tests is held to docs/openapi.yaml.
	hs := httptest.NewServer(openapitest.Handler(t, a.Handler, openapitest.Options{Credentials: true}))
	t.Cleanup(hs.Close)
	return &e2e{t: t, url: hs.URL, app: a, log: logs,
		redis: target.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true })}
}

// browser is a client with a cookie jar that does not follow redirects, so
// that every 303 is seen.
func (e *e2e) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *e2e) do(c *http.Client, method, path string, body io.Reader, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfField = regexp.MustCompile(`name="_csrf"\s+value="([^"]+)"`)

func csrfFrom(t *testing.T, html string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no _csrf field in page:\n%s", html)
	}
	return m[1]
}

func (e *e2e) login(c *http.Client, email, password string) *http.Response {
	e.t.Helper()
	_, page := e.do(c, "GET", "/login", nil)
	form := url.Values{"email": {email}, "password": {password}, "_csrf": {csrfFrom(e.t, page)}}
	resp, _ := e.do(c, "POST", "/login", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	return resp
}

func wantStatus(t *testing.T, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status=%d, want %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want)
	}
}

func TestE2EBrowserFlow(t *testing.T) { redistest.Targets(t, testE2EBrowserFlow) }

func testE2EBrowserFlow(t *testing.T, target redistest.Target) {
	e := startE2EOn(t, target, nil)
	c := e.browser()

	resp, _ := e.do(c, "GET", "/profile", nil)
	wantStatus(t, resp, http.StatusSeeOther)
	if got := resp.Header.Get("Location"); got != "/login" {
		t.Fatalf("anonymous /profile: Location=%q, want /login", got)
	}

	resp = e.login(c, "alice@example.com", "wrong-password")
	wantStatus(t, resp, http.StatusUnauthorized)

	resp = e.login(c, "alice@example.com", "alice-secret")
	wantStatus(t, resp, http.StatusSeeOther)
	if got := resp.Header.Get("Location"); got != "/profile" {
		t.Fatalf("login: Location=%q, want /profile", got)
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "pc_session" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, Path=/", session)
	}

	resp, page := e.do(c, "GET", "/profile", nil)
	wantStatus(t, resp, http.StatusOK)
	for _, want := range []string{"Alice Zoë", "Ångström", "Malmö", "ORD-1-000025", "ORD-1-000006"} {
		if !strings.Contains(page, want) {
			t.Errorf("profile page lacks %q", want)
		}
	}
	if strings.Contains(page, "ORD-1-000005") {
		t.Error("profile page 1 shows an order of page 2")
	}
	resp, page = e.do(c, "GET", "/profile?page=2", nil)
	wantStatus(t, resp, http.StatusOK)
	if !strings.Contains(page, "ORD-1-000005") || !strings.Contains(page, "ORD-1-000001") || strings.Contains(page, "ORD-1-000006") {
		t.Error("profile page 2 does not show orders 5..1 only")
	}

	// The cookie also authenticates the JSON API.
	var orders struct {
		Items []struct {
			Number string `json:"number"`
		} `json:"items"`
		Offset, Limit, Total int
	}
	resp, body := e.do(c, "GET", "/api/me/orders?offset=20&limit=20", nil)
	wantStatus(t, resp, http.StatusOK)
	if err := json.Unmarshal([]byte(body), &orders); err != nil {
		t.Fatal(err)
	}
	if len(orders.Items) != 5 || orders.Total != 25 || orders.Offset != 20 || orders.Limit != 20 || orders.Items[0].Number != "ORD-1-000005" {
		t.Fatalf("orders page = %+v", orders)
	}
	for _, bad := range []string{"limit=0", "limit=101", "limit=abc", "offset=-1", "offset=99999999999999999999999"} {
		resp, body := e.do(c, "GET", "/api/me/orders?"+bad, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("orders?%s: %d %s, want 400 JSON error", bad, resp.StatusCode, body)
		}
	}

	// What Redis holds: typed structures under one hash tag, with TTLs.
	uid := profile.DemoUserID("alice@example.com").String()
	ctx := context.Background()
	keys := redistest.Keys(t, e.redis, "*")
	types := map[string]int{}
	for _, k := range keys {
		// Login throttle budgets belong to an address or an account, not
		// to a user's data: one key each, in a hash tag of its own, with
		// a TTL.
		if strings.HasPrefix(k, "pc:rl:{a:") || strings.HasPrefix(k, "pc:rl:{e:") {
			if ttl, _ := e.redis.Do(ctx, e.redis.B().Pttl().Key(k).Build()).AsInt64(); ttl <= 0 || !strings.HasSuffix(k, "}") {
				t.Errorf("throttle key %q: PTTL %d, want a TTL and the key to end with its hash tag", k, ttl)
			}
			continue
		}
		if k == "pc:events" {
			continue // the event stream (docs/events.md): nobody's, capped
		}
		if !strings.Contains(k, "{u:") {
			t.Errorf("key %q has no user hash tag", k)
			continue
		}
		if !strings.Contains(k, "{u:"+uid+"}") {
			continue
		}
		typ, _ := e.redis.Do(ctx, e.redis.B().Type().Key(k).Build()).ToString()
		types[typ]++
		if ttl, _ := e.redis.Do(ctx, e.redis.B().Ttl().Key(k).Build()).AsInt64(); ttl <= 0 {
			t.Errorf("key %q has TTL %d, want one", k, ttl)
		}
	}
	// 25 orders + 6 invoices + 3 inquiries + basic + meta + session = 37 hashes.
	if types["hash"] != 37 || types["list"] != 3 || types["set"] != 1 || types["zset"] != 1 {
		t.Errorf("alice's key types = %v, want 37 hashes, 3 lists, 1 set, 1 zset", types)
	}

	// Logout revokes the token server-side: replaying the old cookie fails.
	_, page = e.do(c, "GET", "/profile", nil)
	form := url.Values{"_csrf": {csrfFrom(t, page)}}
	resp, _ = e.do(c, "POST", "/logout", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	wantStatus(t, resp, http.StatusSeeOther)
	if got := resp.Header.Get("Location"); got != "/login" {
		t.Fatalf("logout: Location=%q, want /login", got)
	}
	replay := e.browser()
	u, _ := url.Parse(e.url)
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: session.Name, Value: session.Value}})
	resp, _ = e.do(replay, "GET", "/profile", nil)
	wantStatus(t, resp, http.StatusSeeOther)
	resp, body = e.do(replay, "GET", "/api/me", nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
		t.Fatalf("replayed cookie on /api/me: %d %s, want 401 JSON", resp.StatusCode, body)
	}
}

func TestE2EAPIClient(t *testing.T) { redistest.Targets(t, testE2EAPIClient) }

func testE2EAPIClient(t *testing.T, target redistest.Target) {
	// No refresh cooldown: the refresh below, right after the logins'
	// preloads, must reload (throttle_e2e_test.go tests the cooldown).
	e := startE2EOn(t, target, map[string]string{"REFRESH_COOLDOWN": "0"})
	c := &http.Client{}
	apiLogin := func() string {
		resp, body := e.do(c, "POST", "/api/login", strings.NewReader(`{"email":"carol@example.com","password":"carol-secret"}`), "Content-Type", "application/json")
		wantStatus(t, resp, http.StatusOK)
		var out struct {
			Token     string `json:"token"`
			ExpiresAt string `json:"expires_at"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil || out.Token == "" {
			t.Fatalf("api login body %q: %v", body, err)
		}
		if _, err := time.Parse(time.RFC3339, out.ExpiresAt); err != nil {
			t.Fatalf("expires_at %q: %v", out.ExpiresAt, err)
		}
		return out.Token
	}
	tok1, tok2 := apiLogin(), apiLogin()
	if tok1 == tok2 {
		t.Fatal("two logins returned the same token: a login must always make a new session")
	}
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	resp, body := e.do(c, "GET", "/api/me/orders?offset=5000&limit=20", nil, bearer(tok1)...)
	wantStatus(t, resp, http.StatusOK)
	if !strings.Contains(body, `"total":10000`) || !strings.Contains(body, "ORD-3-005000") {
		t.Fatalf("carol's orders at 5000: %s", body)
	}
	resp, body = e.do(c, "GET", "/api/me", nil, bearer(tok1)...)
	wantStatus(t, resp, http.StatusOK)
	if !strings.Contains(body, "Nguyễn") {
		t.Fatalf("/api/me: %s", body)
	}

	resp, body = e.do(c, "GET", "/api/sessions", nil, bearer(tok1)...)
	wantStatus(t, resp, http.StatusOK)
	var sessions []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	if err := json.Unmarshal([]byte(body), &sessions); err != nil || len(sessions) != 2 {
		t.Fatalf("sessions %s: %v", body, err)
	}

	// A reload from the backend, through the Lua/MULTI paths of a save.
	resp, _ = e.do(c, "POST", "/api/me/refresh", nil, bearer(tok1)...)
	wantStatus(t, resp, http.StatusNoContent)
	resp, body = e.do(c, "GET", "/api/me/orders?offset=9990&limit=20", nil, bearer(tok2)...)
	wantStatus(t, resp, http.StatusOK)
	if !strings.Contains(body, `"total":10000`) || strings.Count(body, `"number"`) != 10 {
		t.Fatalf("carol's last orders after a refresh: %s", body)
	}

	// Bearer calls need no CSRF token. Logging out one session leaves the other.
	resp, _ = e.do(c, "POST", "/api/logout", nil, bearer(tok1)...)
	wantStatus(t, resp, http.StatusNoContent)
	resp, _ = e.do(c, "GET", "/api/me", nil, bearer(tok1)...)
	wantStatus(t, resp, http.StatusUnauthorized)
	resp, _ = e.do(c, "GET", "/api/me", nil, bearer(tok2)...)
	wantStatus(t, resp, http.StatusOK)

	resp, body = e.do(c, "POST", "/api/logout-all", nil, bearer(tok2)...)
	wantStatus(t, resp, http.StatusOK)
	if !strings.Contains(body, `"revoked":1`) {
		t.Fatalf("logout-all: %s", body)
	}
	resp, _ = e.do(c, "GET", "/api/me", nil, bearer(tok2)...)
	wantStatus(t, resp, http.StatusUnauthorized)

	resp, body = e.do(c, "GET", "/metrics", nil)
	wantStatus(t, resp, http.StatusOK)
	if !regexp.MustCompile(`(?m)^profilecache_backend_loads_total\{result="ok"\} 3$`).MatchString(body) {
		t.Errorf("metrics lack three ok backend loads (two logins, one refresh):\n%s", grepLines(body, "backend"))
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, _ = e.do(c, "GET", p, nil)
		wantStatus(t, resp, http.StatusOK)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
