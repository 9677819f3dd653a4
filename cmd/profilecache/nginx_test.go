package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/nginxtest"
	"github.com/profilecache/profilecache/internal/redistest"
)

// The loopback addresses of the nginx tests. All of 127.0.0.0/8 is local on
// Linux, so distinct addresses tell the proxy from its clients.
const (
	proxyIP   = "127.0.0.2" // nginx connects to the services from here (proxy_bind)
	clientAIP = "127.0.0.3"
	clientBIP = "127.0.0.4"
	directIP  = "127.0.0.1" // a client that reaches a service without nginx
)

const nginxConfPath = "../../deploy/nginx/default.conf"

// seenRequest is what a service saw of one proxied request.
type seenRequest struct {
	Path, Host, Peer, XFF, XFP, RequestID string
}

// recorder wraps a service's handler and records every request, so a test
// can tell which service nginx routed a path to and what it forwarded.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []seenRequest
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	peer, _, _ := net.SplitHostPort(r.RemoteAddr)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, seenRequest{
		Path: r.URL.Path, Host: r.Host, Peer: peer,
		XFF: r.Header.Get("X-Forwarded-For"), XFP: r.Header.Get("X-Forwarded-Proto"),
		RequestID: r.Header.Get("X-Request-Id"),
	})
	rec.mu.Unlock()
	rec.next.ServeHTTP(w, r)
}

func (rec *recorder) paths() map[string]bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	m := map[string]bool{}
	for _, r := range rec.reqs {
		m[r.Path] = true
	}
	return m
}

// first returns the first request for path.
func (rec *recorder) first(path string) (seenRequest, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.reqs {
		if r.Path == path {
			return r, true
		}
	}
	return seenRequest{}, false
}

// proxied is deploy/nginx/default.conf in a real nginx in front of two
// instances of the service ("sessions" and "customers") on one real Redis,
// as docker-compose.yml deploys them.
type proxied struct {
	http, https string // nginx base URLs
	sessions    *recorder
	customers   *recorder
	sessionsURL string // the sessions service itself, bypassing nginx
	certs       *x509.CertPool
	nginx       *nginxtest.Server
}

// serviceEnv is the environment both services get; overrides change it.
func serviceEnv(redisAddr string, overrides map[string]string) map[string]string {
	env := map[string]string{
		"REDIS_URL":       "redis://" + redisAddr,
		"SESSION_SECRET":  strings.Repeat("nginx-secret-", 3),
		"TRUSTED_PROXIES": proxyIP,
	}
	maps.Copy(env, overrides)
	return env
}

// startService runs one instance of the whole service, as main wires it,
// on a loopback httptest server.
func startService(t *testing.T, env map[string]string) (*recorder, string) {
	t.Helper()
	cfg, err := loadConfig(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	rec := &recorder{next: a.Handler}
	hs := httptest.NewServer(rec)
	t.Cleanup(hs.Close)
	return rec, hs.URL
}

func startProxied(t *testing.T, overrides map[string]string) *proxied {
	t.Helper()
	conf, err := os.ReadFile(nginxConfPath)
	if err != nil {
		t.Fatal(err)
	}
	redis := redistest.Start(t)
	env := serviceEnv(redis.Addr, overrides)
	p := &proxied{}
	var customersURL string
	p.sessions, p.sessionsURL = startService(t, env)
	p.customers, customersURL = startService(t, env)

	p.nginx = nginxtest.Start(t, 2, func(dir string, ports []int) (string, error) {
		cert := nginxtest.SelfSignedCert(t, dir)
		p.certs = cert.Pool
		site, err := renderNginxConf(string(conf), map[string]string{
			"server sessions:8080;":  "server " + strings.TrimPrefix(p.sessionsURL, "http://") + ";",
			"server customers:8080;": "server " + strings.TrimPrefix(customersURL, "http://") + ";",
			// The same server block, once more with TLS: the app must see
			// the scheme the client used, not nginx's plain HTTP to it.
			"listen 80;": fmt.Sprintf("listen 127.0.0.1:%d;\n    listen 127.0.0.1:%d ssl;", ports[0], ports[1]),
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("proxy_bind %s;\nssl_certificate %s;\nssl_certificate_key %s;\n%s",
			proxyIP, cert.CertFile, cert.KeyFile, site), nil
	})
	p.http = "http://" + p.nginx.Addr(0)
	p.https = "https://" + p.nginx.Addr(1)
	return p
}

// renderNginxConf replaces each placeholder line of the committed
// configuration; each must occur exactly once, so that an edit to the file
// that the test no longer understands fails here rather than testing
// something else.
func renderNginxConf(conf string, repl map[string]string) (string, error) {
	for _, old := range slices.Sorted(maps.Keys(repl)) {
		if n := strings.Count(conf, old); n != 1 {
			return "", fmt.Errorf("%s: want exactly one %q, found %d", nginxConfPath, old, n)
		}
		conf = strings.Replace(conf, old, repl[old], 1)
	}
	return conf, nil
}

// client is a browser-like client that connects from the loopback address
// ip, keeps cookies and does not follow redirects.
func (p *proxied) client(ip string) *http.Client {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{
		Jar:       jar,
		Timeout:   60 * time.Second,
		Transport: &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: p.certs}},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (p *proxied) do(t *testing.T, c *http.Client, method, u string, body io.Reader, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", method, u, err, p.nginx.Log())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// formLogin logs in through the HTML form at base (CSRF token included) and
// returns the POST's response.
func (p *proxied) formLogin(t *testing.T, c *http.Client, base string, hdr ...string) *http.Response {
	t.Helper()
	resp, page := p.do(t, c, "GET", base+"/login", nil, hdr...)
	wantStatus(t, resp, http.StatusOK)
	form := url.Values{"email": {"alice@example.com"}, "password": {"alice-secret"}, "_csrf": {csrfFrom(t, page)}}
	resp, _ = p.do(t, c, "POST", base+"/login", strings.NewReader(form.Encode()),
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)...)
	return resp
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, ck := range resp.Cookies() {
		if ck.Name == "pc_session" {
			return ck
		}
	}
	return nil
}

func TestNginxTwoServicesShareOneSession(t *testing.T) {
	p := startProxied(t, nil)
	c := p.client(clientAIP)

	// Log in through the sessions service.
	resp := p.formLogin(t, c, p.http)
	wantStatus(t, resp, http.StatusSeeOther)
	if got := resp.Header.Get("Location"); got != "/profile" {
		t.Fatalf("login: Location=%q, want /profile", got)
	}
	session := sessionCookie(resp)
	if session == nil {
		t.Fatal("login through nginx set no session cookie")
	}
	if session.Secure {
		t.Error("session cookie over plain HTTP is Secure: the browser would never send it back")
	}

	// Read the profile through the customers service.
	resp, page := p.do(t, c, "GET", p.http+"/profile", nil, "X-Request-Id", "trace-42")
	wantStatus(t, resp, http.StatusOK)
	for _, want := range []string{"Alice Zoë", "Ångström", "ORD-1-000025"} {
		if !strings.Contains(page, want) {
			t.Errorf("profile page through nginx lacks %q", want)
		}
	}
	if got := resp.Header.Get("X-Request-Id"); got != "trace-42" {
		t.Errorf("response X-Request-Id=%q, want the client's trace-42", got)
	}
	csrf := csrfFrom(t, page)
	resp, body := p.do(t, c, "GET", p.http+"/api/me", nil)
	wantStatus(t, resp, http.StatusOK)
	if !strings.Contains(body, "alice@example.com") {
		t.Errorf("/api/me through nginx: %s", body)
	}

	// Session list and per-session data through the sessions service.
	resp, body = p.do(t, c, "GET", p.http+"/api/sessions", nil)
	wantStatus(t, resp, http.StatusOK)
	var sessions []struct {
		Current bool `json:"current"`
	}
	if err := json.Unmarshal([]byte(body), &sessions); err != nil || len(sessions) != 1 || !sessions[0].Current {
		t.Fatalf("/api/sessions through nginx: %s (%v), want one current session", body, err)
	}
	resp, _ = p.do(t, c, "PUT", p.http+"/api/session/data/cart", strings.NewReader(`{"items":["ORD-1"]}`),
		"Content-Type", "application/json", "X-CSRF-Token", csrf)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT session data through nginx: %d, want 2xx", resp.StatusCode)
	}
	resp, body = p.do(t, c, "GET", p.http+"/api/session/data/cart", nil)
	wantStatus(t, resp, http.StatusOK)
	if !strings.Contains(body, "ORD-1") {
		t.Errorf("session data through nginx: %s", body)
	}

	// Log out through the sessions service ...
	form := url.Values{"_csrf": {csrf}}
	resp, _ = p.do(t, c, "POST", p.http+"/logout", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	wantStatus(t, resp, http.StatusSeeOther)

	// ... and both services reject the old cookie.
	replay := p.client(clientAIP)
	u, _ := url.Parse(p.http)
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: session.Name, Value: session.Value}})
	resp, _ = p.do(t, replay, "GET", p.http+"/profile", nil)
	wantStatus(t, resp, http.StatusSeeOther)
	for _, path := range []string{"/api/me", "/api/sessions"} {
		resp, body = p.do(t, replay, "GET", p.http+path, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
			t.Errorf("old cookie on %s after logout: %d %s, want 401 JSON", path, resp.StatusCode, body)
		}
	}

	// The edge hides what is not for the public.
	for _, path := range []string{"/metrics", "/internal/profile-changed"} {
		resp, _ = p.do(t, c, "GET", p.http+path, nil)
		wantStatus(t, resp, http.StatusNotFound)
	}
	resp, _ = p.do(t, c, "GET", p.http+"/healthz", nil)
	wantStatus(t, resp, http.StatusOK)

	// Routing: each path reached the service that owns it, and only that.
	routes := []struct {
		path string
		want *recorder
	}{
		{"/login", p.sessions}, {"/logout", p.sessions}, {"/api/sessions", p.sessions},
		{"/api/session/data/cart", p.sessions},
		{"/profile", p.customers}, {"/api/me", p.customers}, {"/healthz", p.customers},
	}
	sessionsSaw, customersSaw := p.sessions.paths(), p.customers.paths()
	for _, r := range routes {
		inSessions, inCustomers := sessionsSaw[r.path], customersSaw[r.path]
		if wantSessions := r.want == p.sessions; inSessions != wantSessions || inCustomers == wantSessions {
			t.Errorf("%s reached sessions=%v customers=%v, want only %s", r.path, inSessions, inCustomers,
				map[bool]string{true: "sessions", false: "customers"}[wantSessions])
		}
	}
	for _, path := range []string{"/metrics", "/internal/profile-changed"} {
		if sessionsSaw[path] || customersSaw[path] {
			t.Errorf("%s reached a service; nginx should answer it", path)
		}
	}

	// What nginx forwarded.
	got, ok := p.customers.first("/profile")
	if !ok {
		t.Fatal("customers saw no /profile")
	}
	want := seenRequest{Path: "/profile", Host: "127.0.0.1", Peer: proxyIP, XFF: clientAIP, XFP: "http", RequestID: "trace-42"}
	if got != want {
		t.Errorf("customers saw %+v, want %+v", got, want)
	}
	if got, _ := p.customers.first("/api/me"); got.RequestID == "" {
		t.Error("nginx forwarded no X-Request-Id when the client sent none")
	}
}

func TestNginxSecureCookieFollowsClientScheme(t *testing.T) {
	p := startProxied(t, nil)
	tests := []struct {
		name       string
		base       string
		ip         string
		hdr        []string
		wantSecure bool
	}{
		{"https to nginx", p.https, clientAIP, nil, true},
		{"http to nginx", p.http, clientAIP, nil, false},
		// nginx overwrites X-Forwarded-Proto with its own $scheme.
		{"http to nginx, forged https", p.http, clientAIP, []string{"X-Forwarded-Proto", "https"}, false},
		// Not from a trusted proxy: the header is ignored.
		{"direct, forged https", p.sessionsURL, directIP, []string{"X-Forwarded-Proto", "https"}, false},
		// From the trusted proxy's address, as a second proxy would send it.
		{"direct from the trusted proxy", p.sessionsURL, proxyIP, []string{"X-Forwarded-Proto", "https"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := p.client(tc.ip)
			resp := p.formLogin(t, c, tc.base, tc.hdr...)
			wantStatus(t, resp, http.StatusSeeOther)
			ck := sessionCookie(resp)
			if ck == nil {
				t.Fatal("no session cookie")
			}
			if ck.Secure != tc.wantSecure {
				t.Errorf("session cookie Secure=%v, want %v", ck.Secure, tc.wantSecure)
			}
			if tc.base != p.https {
				return
			}
			// The browser sends the Secure cookie back over HTTPS.
			resp, page := p.do(t, c, "GET", tc.base+"/profile", nil)
			wantStatus(t, resp, http.StatusOK)
			if !strings.Contains(page, "Ångström") {
				t.Error("profile over HTTPS lacks the user's name")
			}
		})
	}
}

func TestNginxRateLimitSeesTheClient(t *testing.T) {
	const burst = 3
	p := startProxied(t, map[string]string{"LOGIN_BURST": fmt.Sprint(burst), "LOGIN_RATE": "0.001"})
	attempt := func(t *testing.T, c *http.Client, base string, hdr ...string) int {
		t.Helper()
		resp, _ := p.do(t, c, "POST", base+"/api/login", strings.NewReader(`{"email":"alice@example.com","password":"wrong"}`),
			append([]string{"Content-Type", "application/json"}, hdr...)...)
		return resp.StatusCode
	}
	forged := func(i int) []string { return []string{"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i)} }

	a, b := p.client(clientAIP), p.client(clientBIP)
	for i := range burst {
		// A forged X-Forwarded-For does not make client A a new client:
		// nginx appends A's address, and that is what the service keys on.
		if got := attempt(t, a, p.http, forged(i)...); got != http.StatusUnauthorized {
			t.Fatalf("client A attempt %d: %d, want 401", i+1, got)
		}
	}
	if got := attempt(t, a, p.http, forged(99)...); got != http.StatusTooManyRequests {
		t.Fatalf("client A over its burst: %d, want 429", got)
	}
	// Client B, behind the same nginx, has its own budget.
	if got := attempt(t, b, p.http); got != http.StatusUnauthorized {
		t.Fatalf("client B: %d, want 401 (not limited by client A's attempts)", got)
	}

	// Straight to the service, not through a trusted proxy: X-Forwarded-For
	// is ignored, whatever it says.
	d := p.client(directIP)
	for i := range burst {
		if got := attempt(t, d, p.sessionsURL, forged(i)...); got != http.StatusUnauthorized {
			t.Fatalf("direct attempt %d: %d, want 401", i+1, got)
		}
	}
	if got := attempt(t, d, p.sessionsURL, forged(42)...); got != http.StatusTooManyRequests {
		t.Fatalf("direct client over its burst with a forged X-Forwarded-For: %d, want 429", got)
	}

}
