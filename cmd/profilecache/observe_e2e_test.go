package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/profilecache/profilecache/internal/crmtest"
	"github.com/profilecache/profilecache/profile"
)

// metric is the value of the sample line that starts with name (labels
// included) in a Prometheus text scrape; -1 when there is none.
func metric(scrape, name string) float64 {
	for _, line := range strings.Split(scrape, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				return -1
			}
			return v
		}
	}
	return -1
}

func (e *e2e) scrape() string {
	e.t.Helper()
	resp, body := e.do(&http.Client{}, "GET", "/metrics", nil)
	wantStatus(e.t, resp, http.StatusOK)
	return body
}

func TestE2EMetrics(t *testing.T) {
	e := startWithLogger(t, nil)
	c := e.browser()
	api := &http.Client{}
	alice := profile.DemoUserID("alice@example.com")

	wantStatus(t, e.login(c, "alice@example.com", "alice-secret"), http.StatusSeeOther)
	for _, p := range []string{"/profile?page=2", "/api/me/orders?offset=20&limit=5", "/api/me/orders?limit=1000"} {
		e.do(c, "GET", p, nil)
	}
	bearer := e.apiLogin("alice@example.com", "alice-secret")
	resp, body := e.do(api, "GET", "/api/sessions", nil, bearer...)
	wantStatus(t, resp, http.StatusOK)
	var sessions []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	if err := json.Unmarshal([]byte(body), &sessions); err != nil || len(sessions) != 2 {
		t.Fatalf("sessions %s: %v", body, err)
	}
	other := sessions[0].ID
	if sessions[0].Current {
		other = sessions[1].ID
	}
	before := e.scrape()

	// One of each token outcome that a client can cause.
	tok := strings.TrimPrefix(bearer[1], "Bearer ")
	forged := tok[:strings.LastIndex(tok, ".")+1] + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	resp, _ = e.do(api, "GET", "/api/me", nil, "Authorization", "Bearer "+forged)
	wantStatus(t, resp, http.StatusUnauthorized)
	resp, _ = e.do(api, "GET", "/api/me/interests", nil, "Authorization", "Bearer not.a.jwt")
	wantStatus(t, resp, http.StatusUnauthorized)
	resp, _ = e.do(api, "GET", "/api/me", nil)
	wantStatus(t, resp, http.StatusUnauthorized)
	resp, _ = e.do(api, "DELETE", "/api/sessions/"+other, nil, bearer...) // the browser's session
	wantStatus(t, resp, http.StatusNoContent)
	resp, _ = e.do(c, "GET", "/api/me", nil) // the revoked cookie
	wantStatus(t, resp, http.StatusUnauthorized)
	// Repeated reads of one profile: served from the client-side cache.
	resp, _ = e.do(api, "GET", "/api/me", nil, bearer...)
	wantStatus(t, resp, http.StatusOK)
	warm := e.scrape()
	for range 4 {
		resp, _ = e.do(api, "GET", "/api/me", nil, bearer...)
		wantStatus(t, resp, http.StatusOK)
	}
	repeated := e.scrape()
	// Paths that match no route, some with ids in them.
	e.do(api, "GET", "/wp-login.php", nil)
	e.do(api, "GET", "/api/users/"+alice.String(), nil)
	// Disabled webhook (no WEBHOOK_SECRET).
	resp, _ = e.do(api, "POST", "/internal/profile-changed", strings.NewReader(`{"user_id":"`+alice.String()+`"}`),
		"Content-Type", "application/json", "X-Webhook-Secret", "whatever-whatever")
	wantStatus(t, resp, http.StatusNotFound)
	after := e.scrape()

	t.Run("route histogram", func(t *testing.T) {
		for _, want := range []string{
			`profilecache_http_request_duration_seconds_count{code="303",method="POST",route="/login"}`,
			`profilecache_http_request_duration_seconds_count{code="200",method="GET",route="/profile"}`,
			`profilecache_http_request_duration_seconds_count{code="200",method="GET",route="/api/me/orders"}`,
			`profilecache_http_request_duration_seconds_count{code="400",method="GET",route="/api/me/orders"}`,
			`profilecache_http_request_duration_seconds_count{code="204",method="DELETE",route="/api/sessions/:id"}`,
			`profilecache_http_request_duration_seconds_count{code="401",method="GET",route="/api/me"}`,
			`profilecache_http_request_duration_seconds_count{code="404",method="GET",route="unmatched"}`,
			`profilecache_http_request_duration_seconds_count{code="404",method="POST",route="unmatched"}`,
		} {
			if metric(after, want) < 1 {
				t.Errorf("no %s", want)
			}
		}
		if got := metric(after, `profilecache_http_request_duration_seconds_count{code="404",method="GET",route="unmatched"}`); got != 2 {
			t.Errorf("unmatched GETs=%v, want 2", got)
		}
		for _, line := range strings.Split(after, "\n") {
			if !strings.HasPrefix(line, "profilecache_http_request") {
				continue
			}
			for _, raw := range []string{alice.String(), other, "page=", "wp-login", "?", "/api/users"} {
				if strings.Contains(line, raw) {
					t.Errorf("raw request data %q in a route label: %s", raw, line)
				}
			}
		}
	})

	t.Run("token outcomes", func(t *testing.T) {
		for outcome, want := range map[string]float64{"forged": 1, "invalid": 1, "missing": 1, "revoked": 1, "expired": 0, "error": 0} {
			name := `profilecache_token_validations_total{outcome="` + outcome + `"}`
			if got := metric(after, name) - metric(before, name); got != want {
				t.Errorf("%s rose by %v, want %v", name, got, want)
			}
		}
		name := `profilecache_token_validations_total{outcome="ok"}`
		if got := metric(after, name) - metric(before, name); got != 6 { // DELETE + 5 reads (2 scrapes need none)
			t.Errorf("%s rose by %v, want 6", name, got)
		}
	})

	t.Run("client-side cache", func(t *testing.T) {
		hits := `profilecache_redis_client_cache_total{result="hit"}`
		misses := `profilecache_redis_client_cache_total{result="miss"}`
		// Each warm /api/me reads the session, meta and basic: all local.
		if got := metric(repeated, hits) - metric(warm, hits); got < 12 {
			t.Errorf("cache hits rose by %v over 4 repeated reads, want at least 12", got)
		}
		if got := metric(repeated, misses) - metric(warm, misses); got != 0 {
			t.Errorf("cache misses rose by %v over 4 repeated reads, want 0", got)
		}
		if got := metric(after, misses); got < 1 {
			t.Errorf("cache misses=%v, want some (the first reads)", got)
		}
		// Warm reads are no round trips; logins and first reads are.
		trips := `profilecache_redis_round_trip_duration_seconds_count`
		if got := metric(repeated, trips) - metric(warm, trips); got != 0 {
			t.Errorf("Redis round trips rose by %v over 4 repeated reads, want 0", got)
		}
		if got := metric(after, trips); got < 1 {
			t.Errorf("Redis round trips=%v, want some (the logins)", got)
		}
	})

	t.Run("other metrics", func(t *testing.T) {
		for name, min := range map[string]float64{
			`profilecache_backend_loads_total{result="ok"}`:    2, // two logins
			`profilecache_backend_load_duration_seconds_count`: 2,
			`profilecache_redis_errors_total{kind="network"}`:  0,
			`profilecache_reload_lock_wait_seconds_count`:      0,
			`go_goroutines`: 1,
			`profilecache_redis_errors_total{kind="timeout"}`:    0,
			`profilecache_token_validations_total{outcome="ok"}`: 1,
		} {
			if got := metric(after, name); got < min {
				t.Errorf("%s=%v, want at least %v", name, got, min)
			}
		}
	})
}

// Every log line of a request carries its request id, also the lines that
// the auth middleware and the CRM client write deep inside the request.
func TestE2ERequestIDInLogs(t *testing.T) {
	crm := crmtest.New(t)
	crm.AddDemo(t, "alice@example.com", "alice-secret")
	crm.SetIntercept(func(w http.ResponseWriter, _ *http.Request, endpoint string, n int) bool {
		if endpoint == "orders" && n == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable) // one retry, logged
			return true
		}
		return false
	})
	e := startWithLogger(t, map[string]string{"BACKEND_URL": crm.URL})
	api := &http.Client{}
	resp, _ := e.do(api, "POST", "/api/login", strings.NewReader(`{"email":"alice@example.com","password":"alice-secret"}`),
		"Content-Type", "application/json", "X-Request-Id", "rid-login")
	wantStatus(t, resp, http.StatusOK)
	resp, _ = e.do(api, "GET", "/api/me", nil, "X-Request-Id", "rid-anon")
	wantStatus(t, resp, http.StatusUnauthorized)

	byID := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(e.log.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		id, _ := m["request_id"].(string)
		msg, _ := m["msg"].(string)
		byID[id] = append(byID[id], msg)
	}
	for id, want := range map[string][]string{
		"rid-login": {"crm: retrying", "request"},
		"rid-anon":  {"auth: request not authenticated", "request failed", "request"},
	} {
		if got := strings.Join(byID[id], " | "); got != strings.Join(want, " | ") {
			t.Errorf("lines of %s: %q, want %q", id, got, want)
		}
	}
	// Lines outside any request (start-up) have none, and that is all.
	for _, msg := range byID[""] {
		if msg == "request" || strings.HasPrefix(msg, "crm:") || strings.HasPrefix(msg, "auth:") {
			t.Errorf("request-time line %q without a request id", msg)
		}
	}
}

// pprof is off by default, never on the public handler, and when enabled
// only on its own loopback listener.
func TestPprof(t *testing.T) {
	e := startWithLogger(t, nil)
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		resp, _ := e.do(&http.Client{}, "GET", p, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s on the main handler: %d, want 404", p, resp.StatusCode)
		}
	}

	cfg, err := loadConfig([]string{"-pprof", "-pprof-addr", "127.0.0.1:0"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := startPprof(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "goroutine") {
		t.Fatalf("pprof index: %d %.200s", resp.StatusCode, b)
	}

	off, err := loadConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if addr, _, err := startPprof(off, slog.Default()); err != nil || addr != "" {
		t.Fatalf("pprof without the flag: addr=%q err=%v, want off", addr, err)
	}

	for _, bad := range []string{"0.0.0.0:6060", ":6060", "10.1.2.3:6060", "nonsense"} {
		_, err := loadConfig(nil, func(k string) string {
			return map[string]string{"PPROF": "true", "PPROF_ADDR": bad}[k]
		})
		if err == nil || !strings.Contains(err.Error(), "PPROF_ADDR") {
			t.Errorf("PPROF_ADDR=%s: err=%v, want a PPROF_ADDR error", bad, err)
		}
	}
}
