package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/profilecache/profilecache/internal/nginxtest"
	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
)

const forwardAuthConfPath = "../../deploy/nginx/forward-auth.conf"

// identityHeaders are the headers /auth answers and nginx passes on.
var identityHeaders = []string{"X-User-Id", "X-Session-Id", "X-User-Email"}

// echoUpstream is the third service, which knows nothing of profilecache:
// it answers every request with the identity headers it got, all their
// values, as JSON, and counts its requests.
type echoUpstream struct {
	mu   sync.Mutex
	hits int
}

func (u *echoUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.hits++
	u.mu.Unlock()
	got := map[string][]string{}
	for _, h := range identityHeaders {
		got[h] = r.Header.Values(h)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(got)
}

func (u *echoUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}

// forwardAuthSite is deploy/nginx/forward-auth.conf in a real nginx, with
// profilecache instance A as its profilecache and an echoUpstream as its
// app; instance B shares A's Redis and secret but is reached directly.
type forwardAuthSite struct {
	*proxied
	app *echoUpstream
	b   string // instance B's URL
}

func startForwardAuthSite(t *testing.T) *forwardAuthSite {
	t.Helper()
	conf, err := os.ReadFile(forwardAuthConfPath)
	if err != nil {
		t.Fatal(err)
	}
	redis := redistest.Start(t)
	env := serviceEnv(redis.Addr, nil)
	s := &forwardAuthSite{proxied: &proxied{}, app: &echoUpstream{}}
	var aURL string
	s.sessions, aURL = startService(t, env)
	_, s.b = startService(t, env)
	app := httptest.NewServer(s.app)
	t.Cleanup(app.Close)
	s.nginx = nginxtest.Start(t, 1, func(dir string, ports []int) (string, error) {
		cert := nginxtest.SelfSignedCert(t, dir)
		s.certs = cert.Pool
		site, err := renderNginxConf(string(conf), map[string]string{
			"default profilecache:8080;":                  "default " + strings.TrimPrefix(aURL, "http://") + ";",
			"default app:8080;":                           "default " + strings.TrimPrefix(app.URL, "http://") + ";",
			"listen 443 ssl http2;":                       fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", ports[0]),
			"ssl_certificate /etc/nginx/tls/tls.crt;":     "ssl_certificate " + cert.CertFile + ";",
			"ssl_certificate_key /etc/nginx/tls/tls.key;": "ssl_certificate_key " + cert.KeyFile + ";",
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("proxy_bind %s;\n%s", proxyIP, site), nil
	})
	s.https = "https://" + s.nginx.Addr(0)
	return s
}

// forged are identity headers a client makes up.
var forged = []string{"X-User-Id", "00000000-0000-4000-8000-000000000001", "X-Session-Id", "forged-session", "X-User-Email", "admin@example.com"}

// reach asks the app for path through nginx and returns the status, the
// identity headers the app got (nil if the request never reached it) and
// the response.
func (s *forwardAuthSite) reach(t *testing.T, c *http.Client, path string, hdr ...string) (int, map[string][]string, *http.Response, string) {
	t.Helper()
	before := s.app.count()
	resp, body := s.do(t, c, "GET", s.https+path, nil, hdr...)
	if s.app.count() == before {
		return resp.StatusCode, nil, resp, body
	}
	var got map[string][]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("GET %s: app answered %q: %v", path, body, err)
	}
	return resp.StatusCode, got, resp, body
}

// wantIdentity checks that the app got exactly one value of each identity
// header, the real ones.
func wantIdentity(t *testing.T, got map[string][]string, userID, sessionID, email string) {
	t.Helper()
	want := map[string][]string{"X-User-Id": {userID}, "X-Session-Id": {sessionID}, "X-User-Email": {email}}
	for _, h := range identityHeaders {
		if fmt.Sprint(got[h]) != fmt.Sprint(want[h]) {
			t.Errorf("app got %s=%q, want %q", h, got[h], want[h])
		}
	}
}

// wantTurnedAway checks that path is refused without reaching the app: a
// page with a redirect to /login, an API call with 401 JSON.
func (s *forwardAuthSite) wantTurnedAway(t *testing.T, c *http.Client, path string, hdr ...string) {
	t.Helper()
	status, got, resp, body := s.reach(t, c, path, hdr...)
	if got != nil {
		t.Fatalf("GET %s reached the app with %v, want it turned away", path, got)
	}
	if strings.HasPrefix(path, "/app/api/") {
		if status != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
			t.Errorf("GET %s: %d %q, want 401 JSON", path, status, body)
		}
		return
	}
	if status != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("GET %s: %d Location %q, want 303 to /login", path, status, resp.Header.Get("Location"))
	}
}

// TestForwardAuthNginx: deploy/nginx/forward-auth.conf in a real nginx
// protects a service that knows nothing about profilecache.
func TestForwardAuthNginx(t *testing.T) {
	s := startForwardAuthSite(t)
	alice := profile.DemoUserID("alice@example.com").String()

	t.Run("anonymous", func(t *testing.T) {
		c := s.client(clientAIP)
		for _, path := range []string{"/app/", "/app/page?x=1", "/app/api/orders"} {
			s.wantTurnedAway(t, c, path)
			s.wantTurnedAway(t, c, path, forged...) // made-up identity headers change nothing
			s.wantTurnedAway(t, c, path, "Cookie", "__Host-pc_session=not-a-jwt")
		}
	})

	// A browser signs in on profilecache through the same nginx.
	browser := s.client(clientAIP)
	resp := s.formLogin(t, browser, s.https)
	wantStatus(t, resp, http.StatusSeeOther)
	cookie := sessionCookie(resp)
	wantHostCookie(t, cookie, "__Host-pc_session")
	var sessionID string
	t.Run("signed in", func(t *testing.T) {
		for _, hdr := range [][]string{nil, forged} {
			status, got, _, _ := s.reach(t, browser, "/app/page", hdr...)
			if status != http.StatusOK || got == nil {
				t.Fatalf("signed-in GET /app/page: %d, reached the app: %v", status, got != nil)
			}
			if sessionID == "" && len(got["X-Session-Id"]) == 1 {
				sessionID = got["X-Session-Id"][0]
			}
			wantIdentity(t, got, alice, sessionID, "alice@example.com")
		}
		// The session id is the one profilecache lists as current.
		_, body := s.do(t, browser, "GET", s.https+"/api/sessions", nil)
		if !strings.Contains(body, `"id":"`+sessionID+`"`) {
			t.Errorf("X-Session-Id %q is not among the sessions %s", sessionID, body)
		}
	})

	// An API client with a Bearer token from profilecache's JSON login.
	api := s.client(clientBIP)
	token := func() string {
		_, body := s.do(t, api, "POST", s.https+"/api/login", strings.NewReader(`{"email":"alice@example.com","password":"alice-secret"}`),
			"Content-Type", "application/json")
		var out struct{ Token string }
		if err := json.Unmarshal([]byte(body), &out); err != nil || out.Token == "" {
			t.Fatalf("API login: %s", body)
		}
		return out.Token
	}
	bearer := token()
	t.Run("bearer", func(t *testing.T) {
		status, got, _, _ := s.reach(t, api, "/app/api/orders", append([]string{"Authorization", "Bearer " + bearer}, forged...)...)
		if status != http.StatusOK || got == nil || len(got["X-Session-Id"]) != 1 {
			t.Fatalf("Bearer GET /app/api/orders: %d, identity %v", status, got)
		}
		wantIdentity(t, got, alice, got["X-Session-Id"][0], "alice@example.com")
	})

	testForwardAuthLogouts(t, s, browser, cookie, bearer, token)
}

// testForwardAuthLogouts: a logout, a logout on another instance and a
// logout-all cut the app off: signed in as browser (cookie) and with the
// Bearer token bearer; token makes more Bearer sessions.
func testForwardAuthLogouts(t *testing.T, s *forwardAuthSite, browser *http.Client, cookie *http.Cookie, bearer string, token func() string) {
	api := s.client(clientBIP)
	t.Run("logout on profilecache cuts the app off at once", func(t *testing.T) {
		_, page := s.do(t, browser, "GET", s.https+"/sessions", nil)
		resp, _ := s.do(t, browser, "POST", s.https+"/logout", strings.NewReader(url.Values{"_csrf": {csrfFrom(t, page)}}.Encode()),
			"Content-Type", "application/x-www-form-urlencoded")
		wantStatus(t, resp, http.StatusSeeOther)
		// The same cookie, replayed: no polling, the very next request.
		replay := s.client(clientAIP)
		replay.Jar.SetCookies(mustParse(t, s.https), []*http.Cookie{{Name: cookie.Name, Value: cookie.Value, Secure: true}})
		s.wantTurnedAway(t, replay, "/app/page")
		s.wantTurnedAway(t, replay, "/app/api/orders")
	})

	t.Run("logout on another instance", func(t *testing.T) {
		// The Bearer session is hot in instance A's cache; B ends it.
		auth := []string{"Authorization", "Bearer " + bearer}
		resp, _ := s.do(t, s.client(directIP), "POST", s.b+"/api/logout", nil, auth...)
		wantStatus(t, resp, http.StatusNoContent)
		eventually(t, "the app refuses a session another instance ended", func() bool {
			status, got, _, _ := s.reach(t, api, "/app/api/orders", auth...)
			return status == http.StatusUnauthorized && got == nil
		})
	})

	t.Run("logout-all on another instance", func(t *testing.T) {
		t1, t2 := token(), token()
		for _, tk := range []string{t1, t2} {
			if status, _, _, _ := s.reach(t, api, "/app/api/x", "Authorization", "Bearer "+tk); status != http.StatusOK {
				t.Fatalf("fresh session: %d", status)
			}
		}
		resp, _ := s.do(t, s.client(directIP), "POST", s.b+"/api/logout-all", nil, "Authorization", "Bearer "+t1)
		wantStatus(t, resp, http.StatusOK)
		for _, tk := range []string{t1, t2} {
			eventually(t, "the app refuses every session after logout-all", func() bool {
				status, got, _, _ := s.reach(t, api, "/app/api/x", "Authorization", "Bearer "+tk)
				return status == http.StatusUnauthorized && got == nil
			})
		}
	})
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
