package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/profilecache/profilecache/internal/redistest"
)

// outageTimeout is REDIS_TIMEOUT in the outage tests: short, so that the
// test is quick, and long enough for a loaded -race run.
const outageTimeout = time.Second

// hit is one request of the load and what became of it.
type hit struct {
	method, path string
	start, end   time.Time
	status       int
	body         string
	err          error
}

// apiClient is a plain HTTP client with its own transport, so that the
// goroutine check at the end can close its idle connections. Its timeout
// only keeps a broken service from hanging the test; the assertions use
// the measured latency.
func apiClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func call(c *http.Client, base, method, path, token, body string) hit {
	h := hit{method: method, path: path, start: time.Now()}
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		h.err = err
		return h
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == http.MethodPost && strings.HasSuffix(path, "/login") {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		h.err, h.end = err, time.Now()
		return h
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	h.status, h.body, h.end = resp.StatusCode, string(b), time.Now()
	return h
}

func (h hit) String() string {
	return fmt.Sprintf("%s %s -> %d in %v %.200s %v", h.method, h.path, h.status, h.end.Sub(h.start).Round(time.Millisecond), h.body, h.err)
}

func apiLoginToken(t *testing.T, c *http.Client, base, email, password string) string {
	t.Helper()
	h := call(c, base, http.MethodPost, "/api/login", "", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	if h.status != http.StatusOK {
		t.Fatalf("api login: %v", h)
	}
	var out struct{ Token string }
	if err := json.Unmarshal([]byte(h.body), &out); err != nil || out.Token == "" {
		t.Fatalf("api login body %q: %v", h.body, err)
	}
	return out.Token
}

// isErrorJSON reports whether body is {"error": "..."} with a message.
func isErrorJSON(body string) bool {
	var e struct{ Error string }
	return json.Unmarshal([]byte(body), &e) == nil && e.Error != ""
}

// TestRedisOutage stops the real redis-server under load and starts it
// again: requests get 503 JSON within a bounded time (never 500, never a
// hang), /healthz stays 200 and /readyz turns 503; afterwards the service
// recovers by itself, and no goroutine is left behind.
func TestRedisOutage(t *testing.T) {
	// Registered first, so it runs last: after the app, its Redis client,
	// the test server and the HTTP clients are closed.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

	srv := redistest.Start(t)
	e := startE2EOn(t, srv, map[string]string{"REDIS_TIMEOUT": outageTimeout.String()})
	c := apiClient(t)
	bound := 3 * outageTimeout // a sanity bound on any one request, not a latency target

	tokens := []string{
		apiLoginToken(t, c, e.url, "alice@example.com", "alice-secret"),
		apiLoginToken(t, c, e.url, "bob@example.com", "bob-secret"),
	}

	// A bounded load: 8 clients, each one request at a time.
	const workers = 8
	var (
		mu   sync.Mutex
		hits []hit
		wg   sync.WaitGroup
	)
	stop := make(chan struct{})
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad) // also when the test fails half-way
	for w := range workers {
		wg.Go(func() {
			tok := tokens[w%len(tokens)]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var h hit
				switch i % 5 {
				case 0:
					h = call(c, e.url, http.MethodGet, "/api/me", tok, "")
				case 1:
					h = call(c, e.url, http.MethodGet, fmt.Sprintf("/api/me/orders?offset=%d&limit=10", i%20), tok, "")
				case 2:
					h = call(c, e.url, http.MethodPut, fmt.Sprintf("/api/session/data/k%d", w), tok, "v")
				case 3:
					h = call(c, e.url, http.MethodGet, "/api/sessions", tok, "")
				case 4:
					h = call(c, e.url, http.MethodGet, "/api/me/interests", tok, "")
				}
				mu.Lock()
				hits = append(hits, h)
				mu.Unlock()
			}
		})
	}
	count := func(from time.Time, status int) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, h := range hits {
			if !h.start.Before(from) && h.status == status {
				n++
			}
		}
		return n
	}
	poll := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	start := time.Now()
	poll("load served before the outage", 10*time.Second, func() bool { return count(start, http.StatusOK) >= 50 })

	stopAt := time.Now()
	srv.Stop()
	poll("503s during the outage", 10*time.Second, func() bool { return count(stopAt, http.StatusServiceUnavailable) >= 20 })
	if h := call(c, e.url, http.MethodGet, "/healthz", "", ""); h.status != http.StatusOK {
		t.Errorf("/healthz during the outage: %v, want 200", h)
	}
	if h := call(c, e.url, http.MethodGet, "/readyz", "", ""); h.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %v, want 503", h)
	}
	// Stay down well past the bound, so that a request that would hang
	// until Redis is back is seen as one.
	time.Sleep(time.Until(stopAt.Add(bound + time.Second)))

	restartAt := time.Now()
	srv.Restart(t)
	poll("/readyz after the restart", 10*time.Second, func() bool {
		return call(c, e.url, http.MethodGet, "/readyz", "", "").status == http.StatusOK
	})
	// Redis came back empty (no persistence): old sessions are gone, and
	// say so with 401, not 503.
	poll("an old token is refused after the restart", 10*time.Second, func() bool {
		h := call(c, e.url, http.MethodGet, "/api/me", tokens[0], "")
		return h.status == http.StatusUnauthorized
	})
	fresh := apiLoginToken(t, c, e.url, "alice@example.com", "alice-secret")
	if h := call(c, e.url, http.MethodGet, "/api/me/orders?limit=5", fresh, ""); h.status != http.StatusOK || !strings.Contains(h.body, `"total":25`) {
		t.Errorf("orders with a fresh login after the restart: %v", h)
	}
	stopLoad()

	statuses := map[string]map[int]int{}
	for _, h := range hits {
		// By when the answer came: Redis was up, down, or back (empty).
		phase := "before"
		switch {
		case !h.end.Before(restartAt):
			phase = "after"
		case !h.end.Before(stopAt):
			phase = "outage"
		}
		if statuses[phase] == nil {
			statuses[phase] = map[int]int{}
		}
		statuses[phase][h.status]++
		if d := h.end.Sub(h.start); h.err != nil || d > bound {
			t.Errorf("%s: took %v or failed, want an answer within %v", h, d, bound)
			continue
		}
		ok := h.status == http.StatusOK || h.status == http.StatusNoContent
		switch phase {
		case "before":
			if !ok {
				t.Errorf("before the outage: %v", h)
			}
		case "outage":
			// Reads that need no Redis (a cached session and profile) may
			// still succeed; everything else is a clean 503.
			if !ok && (h.status != http.StatusServiceUnavailable || !isErrorJSON(h.body)) {
				t.Errorf("during the outage: %v, want 2xx or 503 JSON", h)
			}
		case "after":
			if !ok && h.status != http.StatusServiceUnavailable && h.status != http.StatusUnauthorized {
				t.Errorf("after the restart: %v, want 2xx, 503 or 401", h)
			}
		}
	}
	t.Logf("statuses by phase: %v (outage %v, REDIS_TIMEOUT %v)", statuses, restartAt.Sub(stopAt).Round(time.Millisecond), outageTimeout)
	if statuses["outage"][http.StatusServiceUnavailable] == 0 {
		t.Error("no 503 during the outage: the outage was not observed")
	}
}

// TestReadOnlyRedis: an instance left with a read-only Redis (a replica
// whose master is gone) keeps its users signed in and serving reads; the
// sliding-expiry write fails and is logged, not turned into a logout, and
// writes answer 503, not 500.
func TestReadOnlyRedis(t *testing.T) {
	primary, replica := redistest.Start(t), redistest.Start(t)
	replica.ReplicaOf(t, primary)
	env := map[string]string{"TOKEN_TTL": "4s"} // slides at most once a second
	writer := startE2EOn(t, primary, env)
	reader := startE2EOn(t, replica, env)
	c := apiClient(t)
	tok := apiLoginToken(t, c, writer.url, "alice@example.com", "alice-secret")

	// Replication is asynchronous: wait until the replica has the session.
	deadline := time.Now().Add(10 * time.Second)
	for call(c, reader.url, http.MethodGet, "/api/me", tok, "").status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the session never reached the replica")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Idle long enough that the next request is due to slide the expiry.
	time.Sleep(1100 * time.Millisecond)
	for _, path := range []string{"/api/me", "/api/me/orders?offset=20&limit=20", "/api/sessions"} {
		if h := call(c, reader.url, http.MethodGet, path, tok, ""); h.status != http.StatusOK {
			t.Errorf("read on the read-only instance: %v, want 200", h)
		}
	}
	if logs := reader.log.String(); !strings.Contains(logs, "session expiry not slid") || !strings.Contains(logs, "READONLY") {
		t.Errorf("no warning about the failed sliding write (READONLY) in the log:\n%s", logs)
	}
	if h := call(c, reader.url, http.MethodPut, "/api/session/data/cart", tok, "x"); h.status != http.StatusServiceUnavailable || !isErrorJSON(h.body) {
		t.Errorf("a write on the read-only instance: %v, want 503 JSON", h)
	}
	if h := call(c, writer.url, http.MethodGet, "/api/me", tok, ""); h.status != http.StatusOK {
		t.Errorf("the same session on the writable instance: %v, want 200", h)
	}
}
