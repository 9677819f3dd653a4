package web_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/logctx"
	"github.com/profilecache/profilecache/internal/syncbuf"
	"github.com/profilecache/profilecache/web"
)

type observation struct {
	route, method string
	status        int
}

type observer struct {
	mu  sync.Mutex
	obs []observation
}

func (o *observer) observe(route, method string, status int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.obs = append(o.obs, observation{route, method, status})
}

func (o *observer) last() (observation, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.obs) == 0 {
		return observation{}, 0
	}
	return o.obs[len(o.obs)-1], len(o.obs)
}

// Every request is observed once, labelled with its route template and its
// final status, errors included; raw paths never become labels.
func TestObserveRequests(t *testing.T) {
	obs := &observer{}
	env := newTestEnv(t, func(c *web.Config) { c.ObserveRequest = obs.observe })
	tests := []struct {
		name string
		req  request
		want observation
	}{
		{"page", request{path: "/profile?page=2", user: zoeID}, observation{"/profile", "GET", 200}},
		{"api with a query", request{path: "/api/me/orders?offset=20&limit=5", user: zoeID}, observation{"/api/me/orders", "GET", 200}},
		{"path parameter", request{method: "DELETE", path: "/api/sessions/" + otherSession, user: zoeID, csrf: true},
			observation{"/api/sessions/:id", "DELETE", 204}},
		{"handler error", request{path: "/api/me/orders?limit=1000", user: zoeID}, observation{"/api/me/orders", "GET", 400}},
		{"anonymous api", request{path: "/api/me"}, observation{"/api/me", "GET", 401}},
		{"anonymous page", request{path: "/profile"}, observation{"/profile", "GET", 303}},
		{"no such path", request{path: "/wp-admin/" + zoeID.String()}, observation{"unmatched", "GET", 404}},
		{"no such api path", request{path: "/api/nope/123"}, observation{"unmatched", "GET", 404}},
		{"wrong method", request{method: "PATCH", path: "/api/me", user: zoeID, csrf: true}, observation{"/api/me", "PATCH", 405}},
		{"odd method", request{method: "BREW", path: "/api/me", user: zoeID, csrf: true}, observation{"/api/me", "OTHER", 405}},
		{"probe", request{path: "/healthz"}, observation{"/healthz", "GET", 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, before := obs.last()
			rec := env.do(t, tt.req)
			got, after := obs.last()
			if after != before+1 {
				t.Fatalf("%d observations for one request, want 1", after-before)
			}
			if got != tt.want {
				t.Fatalf("observed %+v, want %+v", got, tt.want)
			}
			if got.status != rec.Code {
				t.Fatalf("observed status %d, client got %d", got.status, rec.Code)
			}
		})
	}
}

// Every log line of a request carries its request id: the request line,
// the error line, and lines that code deeper down writes with the request's
// context.
func TestRequestIDOnEveryLogLine(t *testing.T) {
	logs := &syncbuf.Buffer{}
	changes := &fakeChanges{}
	env := newTestEnv(t, func(c *web.Config) {
		c.Logger = slog.New(logctx.NewHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		c.Changes = changes
		c.WebhookSecret = webhookSecret
	})
	hdr := map[string]string{web.HeaderWebhookSecret: webhookSecret, "Content-Type": "application/json", "X-Request-Id": "rid-webhook"}
	if rec := env.do(t, request{method: "POST", path: "/internal/profile-changed", body: fmt.Sprintf(`{"user_id":%q}`, zoeID), header: hdr}); rec.Code != 204 {
		t.Fatalf("webhook: status %d", rec.Code)
	}
	if rec := env.do(t, request{path: "/api/me/orders?limit=0", user: zoeID, header: map[string]string{"X-Request-Id": "rid-bad-page"}}); rec.Code != 400 {
		t.Fatalf("bad page: status %d", rec.Code)
	}
	rec := env.do(t, request{path: "/api/me", user: zoeID})
	generated := rec.Header().Get("X-Request-Id")
	if generated == "" {
		t.Fatal("no X-Request-Id on the response")
	}

	lines := map[string][]string{} // request id -> messages
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		id, _ := m["request_id"].(string)
		if id == "" {
			t.Errorf("log line without request_id: %s", line)
		}
		if strings.Count(line, `"request_id"`) != 1 {
			t.Errorf("request_id more than once: %s", line)
		}
		lines[id] = append(lines[id], m["msg"].(string))
	}
	for id, want := range map[string][]string{
		"rid-webhook":  {"profile changed: cached profile dropped", "request"},
		"rid-bad-page": {"request failed", "request"},
		generated:      {"request"},
	} {
		if got := strings.Join(lines[id], "|"); got != strings.Join(want, "|") {
			t.Errorf("lines of %s: %q, want %q", id, got, want)
		}
	}
}

// An incoming request id is kept when it is short printable ASCII, and
// replaced by a fresh one otherwise, so that clients cannot bloat or forge
// log lines through it.
func TestIncomingRequestID(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name, id string
		kept     bool
	}{
		{"Plain", "abc-123", true},
		{"AtLimit", strings.Repeat("r", 128), true},
		{"TooLong", strings.Repeat("r", 129), false},
		{"ControlCharacter", "abc\x01def", false},
		{"Space", "abc def", false},
		{"NonASCII", "zoë", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := env.do(t, request{path: "/healthz", header: map[string]string{"X-Request-Id": tt.id}})
			got := rec.Header().Get("X-Request-Id")
			if kept := got == tt.id; kept != tt.kept {
				t.Fatalf("response id %q for incoming %q: kept=%v, want %v", got, tt.id, kept, tt.kept)
			}
			if got == "" || len(got) > 128 {
				t.Fatalf("response id %q, want a fresh id of at most 128 bytes", got)
			}
		})
	}
}

// The request line has every field operators filter on; probes have none,
// and fresh request ids do not repeat.
func TestRequestLogLine(t *testing.T) {
	logs := &syncbuf.Buffer{}
	env := newTestEnv(t, func(c *web.Config) {
		c.Logger = slog.New(logctx.NewHandler(slog.NewJSONHandler(logs, nil)))
	})
	ids := map[string]bool{}
	for range 3 {
		rec := env.do(t, request{path: "/api/me/orders?limit=2", user: zoeID})
		ids[rec.Header().Get("X-Request-Id")] = true
		env.do(t, request{path: "/healthz"})
	}
	if len(ids) != 3 {
		t.Errorf("request ids %v, want 3 different ones", ids)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3 (probes are not logged):\n%s", len(lines), logs.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"level": "INFO", "msg": "request", "method": "GET", "path": "/api/me/orders",
		"route": "/api/me/orders", "status": 200.0, "remote_ip": "192.0.2.1",
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v in %s", k, m[k], want, lines[0])
		}
	}
	if lat, ok := m["latency"].(float64); !ok || lat <= 0 {
		t.Errorf("latency = %v, want a positive duration in %s", m["latency"], lines[0])
	}
	if id, _ := m["request_id"].(string); !ids[id] {
		t.Errorf("request_id = %q, not one the responses carried", id)
	}
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["time"])); err != nil {
		t.Errorf("time: %v", err)
	}
}
