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
	"github.com/profilecache/profilecache/internal/openapitest"
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
// as docker-compose.yml deploys them: HTTPS with a certificate the test
// makes, plain HTTP that only redirects, and the loopback health listener.
type proxied struct {
	http, https string // nginx base URLs
	health      string // the health check listener's base URL
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
	rec := &recorder{next: openapitest.Handler(t, a.Handler, openapitest.Options{Credentials: true})}
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

	p.nginx = nginxtest.Start(t, 3, func(dir string, ports []int) (string, error) {
		// The certificate compose mounts from deploy/tls/, made here.
		cert := nginxtest.SelfSignedCert(t, dir)
		p.certs = cert.Pool
		site, err := renderNginxConf(string(conf), map[string]string{
			"default sessions:8080;":                      "default " + strings.TrimPrefix(p.sessionsURL, "http://") + ";",
			"default customers:8080;":                     "default " + strings.TrimPrefix(customersURL, "http://") + ";",
			"listen 80;":                                  fmt.Sprintf("listen 127.0.0.1:%d;", ports[0]),
			"listen 443 ssl http2;":                       fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", ports[1]),
			"listen 127.0.0.1:8081;":                      fmt.Sprintf("listen 127.0.0.1:%d;", ports[2]),
			"ssl_certificate /etc/nginx/tls/tls.crt;":     "ssl_certificate " + cert.CertFile + ";",
			"ssl_certificate_key /etc/nginx/tls/tls.key;": "ssl_certificate_key " + cert.KeyFile + ";",
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("proxy_bind %s;\n%s", proxyIP, site), nil
	})
	p.http = "http://" + p.nginx.Addr(0)
	p.https = "https://" + p.nginx.Addr(1)
	p.health = "http://" + p.nginx.Addr(2)
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
		Jar:     jar,
		Timeout: 60 * time.Second,
		// HTTP/2 when nginx offers it, as browsers would.
		Transport: &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: p.certs}, ForceAttemptHTTP2: true},
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

// sessionCookie returns the session cookie that resp sets, under either
// name (__Host-pc_session when Secure, pc_session otherwise).
func sessionCookie(resp *http.Response) *http.Cookie {
	for _, ck := range resp.Cookies() {
		if ck.Name == "pc_session" || ck.Name == "__Host-pc_session" {
			return ck
		}
	}
	return nil
}

// wantHostCookie checks what a browser needs to accept a __Host- cookie
// (Secure, Path=/, no Domain), and HttpOnly.
func wantHostCookie(t *testing.T, ck *http.Cookie, name string) {
	t.Helper()
	if ck == nil {
		t.Fatalf("no %s cookie", name)
	}
	if ck.Name != name || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.Domain != "" {
		t.Errorf("cookie %+v, want %s: Secure, HttpOnly, Path=/, no Domain", ck, name)
	}
}

// wantHSTS checks the Strict-Transport-Security header of an HTTPS answer:
// at least a year, subdomains included.
func wantHSTS(t *testing.T, resp *http.Response) {
	t.Helper()
	h := resp.Header.Get("Strict-Transport-Security")
	var maxAge int
	if _, err := fmt.Sscanf(h, "max-age=%d;", &maxAge); err != nil || maxAge < 365*24*3600 || !strings.Contains(h, "includeSubDomains") {
		t.Errorf("%s %s: Strict-Transport-Security %q, want max-age >= 1 year and includeSubDomains", resp.Request.Method, resp.Request.URL.Path, h)
	}
}

func TestNginxTwoServicesShareOneSession(t *testing.T) {
	p := startProxied(t, nil)
	c := p.client(clientAIP)

	// Log in through the sessions service, over HTTPS: the cookie is a
	// Secure __Host- cookie, as the app sees X-Forwarded-Proto https.
	resp := p.formLogin(t, c, p.https)
	wantStatus(t, resp, http.StatusSeeOther)
	if got := resp.Header.Get("Location"); got != "/profile" {
		t.Fatalf("login: Location=%q, want /profile", got)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("nginx answered over %s, want HTTP/2", resp.Proto)
	}
	wantHSTS(t, resp)
	session := sessionCookie(resp)
	wantHostCookie(t, session, "__Host-pc_session")

	// Read the profile through the customers service.
	resp, page := p.do(t, c, "GET", p.https+"/profile", nil, "X-Request-Id", "trace-42")
	wantStatus(t, resp, http.StatusOK)
	wantHSTS(t, resp)
	for _, want := range []string{"Alice Zoë", "Ångström", "ORD-1-000025"} {
		if !strings.Contains(page, want) {
			t.Errorf("profile page through nginx lacks %q", want)
		}
	}
	if got := resp.Header.Get("X-Request-Id"); got != "trace-42" {
		t.Errorf("response X-Request-Id=%q, want the client's trace-42", got)
	}
	csrf := csrfFrom(t, page)
	resp, body := p.do(t, c, "GET", p.https+"/api/me", nil)
	wantStatus(t, resp, http.StatusOK)
	if !strings.Contains(body, "alice@example.com") {
		t.Errorf("/api/me through nginx: %s", body)
	}

	// Session list and per-session data through the sessions service.
	resp, body = p.do(t, c, "GET", p.https+"/api/sessions", nil)
	wantStatus(t, resp, http.StatusOK)
	var sessions []struct {
		Current bool `json:"current"`
	}
	if err := json.Unmarshal([]byte(body), &sessions); err != nil || len(sessions) != 1 || !sessions[0].Current {
		t.Fatalf("/api/sessions through nginx: %s (%v), want one current session", body, err)
	}
	// A browser's fetch from the page: same-origin, with the page's token.
	resp, _ = p.do(t, c, "PUT", p.https+"/api/session/data/cart", strings.NewReader(`{"items":["ORD-1"]}`),
		"Content-Type", "application/json", "X-CSRF-Token", csrf, "Sec-Fetch-Site", "same-origin", "Origin", p.https)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT session data through nginx: %d, want 2xx", resp.StatusCode)
	}
	resp, body = p.do(t, c, "GET", p.https+"/api/session/data/cart", nil)
	wantStatus(t, resp, http.StatusOK)
	if !strings.Contains(body, "ORD-1") {
		t.Errorf("session data through nginx: %s", body)
	}

	// Log out through the sessions service ...
	form := url.Values{"_csrf": {csrf}}
	resp, _ = p.do(t, c, "POST", p.https+"/logout", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	wantStatus(t, resp, http.StatusSeeOther)

	// ... and both services reject the old cookie.
	replay := p.client(clientAIP)
	u, _ := url.Parse(p.https)
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: session.Name, Value: session.Value, Secure: true}})
	resp, _ = p.do(t, replay, "GET", p.https+"/profile", nil)
	wantStatus(t, resp, http.StatusSeeOther)
	for _, path := range []string{"/api/me", "/api/sessions"} {
		resp, body = p.do(t, replay, "GET", p.https+path, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
			t.Errorf("old cookie on %s after logout: %d %s, want 401 JSON", path, resp.StatusCode, body)
		}
	}

	// The edge hides what is not for the public, however the path is
	// spelled, and says so with HSTS like every HTTPS answer.
	hidden := []struct{ method, path string }{
		{"GET", "/metrics"}, {"GET", "/readyz"}, {"GET", "/internal/profile-changed"},
		{"POST", "/internal/profile-changed"}, {"GET", "/%6Detrics"}, {"GET", "//readyz"},
		{"GET", "/metrics?x=1"}, {"GET", "/static/../readyz"},
	}
	for _, h := range hidden {
		resp, _ = p.do(t, c, h.method, p.https+h.path, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s from outside: %d, want 404", h.method, h.path, resp.StatusCode)
		}
		wantHSTS(t, resp)
	}
	resp, _ = p.do(t, c, "GET", p.https+"/healthz", nil)
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
	for _, path := range []string{"/metrics", "/readyz", "/internal/profile-changed"} {
		if sessionsSaw[path] || customersSaw[path] {
			t.Errorf("%s reached a service; nginx should answer it", path)
		}
	}

	// What nginx forwarded: the scheme the client used and the Host with
	// its port, which CrossOriginProtection compares with Origin.
	got, ok := p.customers.first("/profile")
	if !ok {
		t.Fatal("customers saw no /profile")
	}
	want := seenRequest{Path: "/profile", Host: p.nginx.Addr(1), Peer: proxyIP, XFF: clientAIP, XFP: "https", RequestID: "trace-42"}
	if got != want {
		t.Errorf("customers saw %+v, want %+v", got, want)
	}
	if got, _ := p.customers.first("/api/me"); got.RequestID == "" {
		t.Error("nginx forwarded no X-Request-Id when the client sent none")
	}
}

// TestNginxHTTPRedirectsToHTTPS: plain HTTP answers every request with a
// permanent redirect to the same URL over HTTPS, sets no cookie and
// reaches no service.
func TestNginxHTTPRedirectsToHTTPS(t *testing.T) {
	p := startProxied(t, nil)
	c := p.client(clientAIP)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/login?next=%2Fprofile"}, {"POST", "/login"}, {"GET", "/metrics"},
		{"GET", "/api/me"}, {"POST", "/internal/profile-changed"},
	} {
		resp, _ := p.do(t, c, tc.method, p.http+tc.path, nil)
		if resp.StatusCode != http.StatusMovedPermanently {
			t.Errorf("%s http://…%s: %d, want 301", tc.method, tc.path, resp.StatusCode)
		}
		// nginx does not know the port the world reaches it on (443 in
		// production), so only the host and the path are compared.
		if got, want := resp.Header.Get("Location"), "https://127.0.0.1"+tc.path; got != want {
			t.Errorf("%s http://…%s: Location %q, want %q", tc.method, tc.path, got, want)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("%s http://…%s set cookies %v over plain HTTP", tc.method, tc.path, resp.Cookies())
		}
	}
	if n := len(p.sessions.paths()) + len(p.customers.paths()); n != 0 {
		t.Errorf("plain-HTTP requests reached the services (%d paths)", n)
	}

	// The health listener (loopback in the container, for its health
	// check) answers without TLS and reaches a service.
	resp, _ := p.do(t, c, "GET", p.health+"/healthz", nil)
	wantStatus(t, resp, http.StatusOK)
	resp, _ = p.do(t, c, "GET", p.health+"/metrics", nil)
	wantStatus(t, resp, http.StatusNotFound)
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
		// nginx overwrites X-Forwarded-Proto: a client's word means nothing.
		{"https to nginx, forged http", p.https, clientAIP, []string{"X-Forwarded-Proto", "http"}, true},
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
			if tc.wantSecure {
				wantHostCookie(t, ck, "__Host-pc_session")
			} else if ck.Name != "pc_session" || ck.Secure {
				t.Errorf("session cookie %s Secure=%v, want pc_session, not Secure", ck.Name, ck.Secure)
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

	// A cookie without the prefix does not count on HTTPS, however valid
	// its content: it is what a sibling subdomain or a plain-HTTP answer
	// could plant. Here a real session of the service, made over plain
	// HTTP, sent to nginx under the plain name.
	direct := p.client(directIP)
	resp := p.formLogin(t, direct, p.sessionsURL)
	plain := sessionCookie(resp)
	if plain == nil || plain.Name != "pc_session" {
		t.Fatalf("direct plain-HTTP login set %v, want pc_session", plain)
	}
	for _, tc := range []struct {
		name string
		want int
	}{{"pc_session", http.StatusUnauthorized}, {"__Host-pc_session", http.StatusOK}} {
		c := p.client(clientBIP)
		req, _ := http.NewRequest("GET", p.https+"/api/me", nil)
		req.AddCookie(&http.Cookie{Name: tc.name, Value: plain.Value})
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("the session's JWT as %s over HTTPS: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}

// TestNginxCSRF: through nginx over HTTPS, a state-changing request from a
// sibling subdomain (Sec-Fetch-Site: same-site) or from a foreign Origin is
// refused although it has the right cookie and token, and a CSRF cookie
// planted under the plain name does not count.
func TestNginxCSRF(t *testing.T) {
	p := startProxied(t, nil)
	c := p.client(clientAIP)
	wantStatus(t, p.formLogin(t, c, p.https), http.StatusSeeOther)
	_, page := p.do(t, c, "GET", p.https+"/sessions", nil)
	token := csrfFrom(t, page)
	formHdr := []string{"Content-Type", "application/x-www-form-urlencoded"}
	with := func(hdr ...string) []string { return append(append([]string(nil), formHdr...), hdr...) }
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
	}{
		{"logout-all from a sibling subdomain", "POST", "/logout-all", form("_csrf", token), with("Sec-Fetch-Site", "same-site")},
		{"logout-all from a foreign origin", "POST", "/logout-all", form("_csrf", token), with("Origin", "https://evil.example")},
		{"data from a sibling subdomain", "PUT", "/api/session/data/x", "v", []string{"X-CSRF-Token", token, "Sec-Fetch-Site", "same-site"}},
		{"data from a foreign origin", "PUT", "/api/session/data/x", "v", []string{"X-CSRF-Token", token, "Origin", "https://evil.example"}},
	} {
		resp, body := p.do(t, c, tc.method, p.https+tc.path, strings.NewReader(tc.body), tc.hdr...)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, resp.StatusCode)
		}
		if strings.HasPrefix(tc.path, "/api/") && !strings.Contains(body, `"error"`) {
			t.Errorf("%s: body %s, want JSON with an error", tc.name, body)
		}
	}
	// The same requests from the site's own page work.
	resp, _ := p.do(t, c, "PUT", p.https+"/api/session/data/x", strings.NewReader("v"), "X-CSRF-Token", token, "Origin", p.https)
	wantStatus(t, resp, http.StatusNoContent)
	resp, _ = p.do(t, c, "POST", p.https+"/logout-all", strings.NewReader(form("_csrf", token)), with("Sec-Fetch-Site", "same-origin")...)
	wantStatus(t, resp, http.StatusSeeOther)

	// A login form pair obtained over plain HTTP (cookie pc_csrf), planted
	// under the plain name: ignored on HTTPS, so the login is refused.
	direct := p.client(directIP)
	resp, loginPage := p.do(t, direct, "GET", p.sessionsURL+"/login", nil)
	var nonce *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "pc_csrf" {
			nonce = ck
		}
	}
	if nonce == nil {
		t.Fatalf("plain GET /login set %v, want a pc_csrf cookie", resp.Cookies())
	}
	victim := p.client(clientBIP)
	req, _ := http.NewRequest("POST", p.https+"/login", strings.NewReader(form("email", "alice@example.com", "password", "alice-secret", "_csrf", csrfFrom(t, loginPage))))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "pc_csrf", Value: nonce.Value})
	resp, err := victim.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || sessionCookie(resp) != nil {
		t.Errorf("HTTPS login with a planted plain CSRF cookie: %d, session cookie %v; want 403 and none", resp.StatusCode, sessionCookie(resp))
	}
	// Over HTTPS the login form's cookie is a __Host- cookie.
	resp, _ = p.do(t, victim, "GET", p.https+"/login", nil)
	var hostNonce *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-pc_csrf" {
			hostNonce = ck
		}
	}
	wantHostCookie(t, hostNonce, "__Host-pc_csrf")
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
		if got := attempt(t, a, p.https, forged(i)...); got != http.StatusUnauthorized {
			t.Fatalf("client A attempt %d: %d, want 401", i+1, got)
		}
	}
	if got := attempt(t, a, p.https, forged(99)...); got != http.StatusTooManyRequests {
		t.Fatalf("client A over its burst: %d, want 429", got)
	}
	// Client B, behind the same nginx, has its own budget.
	if got := attempt(t, b, p.https); got != http.StatusUnauthorized {
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
