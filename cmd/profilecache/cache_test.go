package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// The client-side cache at the request level: two instances of the service
// on one Redis, each with its own rueidis client and cache, as in
// production. A hot request is served from the local cache; a change made
// elsewhere reaches it through Redis's invalidation, a moment later.

// instance is one app, driven through its handler without a listener.
type instance struct {
	tb testing.TB
	h  http.Handler
}

func newInstance(tb testing.TB, srv *redistest.Server) *instance {
	tb.Helper()
	env := map[string]string{
		"REDIS_URL":      "redis://" + srv.Addr,
		"SESSION_SECRET": strings.Repeat("cache-secret-", 3),
		"LOGIN_BURST":    "1000",
	}
	cfg, err := loadConfig(nil, func(k string) string { return env[k] })
	if err != nil {
		tb.Fatal(err)
	}
	// JSON at Info, as in production, so that benchmarks pay for the
	// request log too.
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	return &instance{tb: tb, h: a.Handler}
}

func (in *instance) do(method, path, token string, body io.Reader) (int, string) {
	in.tb.Helper()
	req := httptest.NewRequest(method, path, body)
	req.RemoteAddr = "127.0.0.1:1234"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	in.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func (in *instance) login(email, password string) string {
	in.tb.Helper()
	code, body := in.do(http.MethodPost, "/api/login", "",
		strings.NewReader(`{"email":"`+email+`","password":"`+password+`"}`))
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil || out.Token == "" {
		in.tb.Fatalf("login %s: %d %s", email, code, body)
	}
	return out.Token
}

// get wants a 200 and returns the body.
func (in *instance) get(path, token string) string {
	in.tb.Helper()
	code, body := in.do(http.MethodGet, path, token, nil)
	if code != http.StatusOK {
		in.tb.Fatalf("GET %s: %d %s, want 200", path, code, body)
	}
	return body
}

// dataCommands counts the commands Redis has run, except the ones that are
// not about data (the clients' background PINGs, INFO itself, handshakes).
func dataCommands(t *testing.T, raw rueidis.Client) int64 {
	t.Helper()
	s, err := raw.Do(context.Background(), raw.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(s, "\r\n") {
		name, stats, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		switch name {
		case "ping", "info", "hello", "client|tracking", "client|setinfo", "client|setname", "select":
			continue
		}
		calls, _, _ := strings.Cut(stats, ",")
		c, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			t.Fatalf("commandstats line %q: %v", line, err)
		}
		n += c
	}
	return n
}

// eventually polls cond for up to 2s: invalidations travel asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fullProfile is alice's whole profile as the backend has it.
func fullProfile(t *testing.T, id uuid.UUID) *profile.Profile {
	t.Helper()
	p, err := profile.Fetch(context.Background(), profile.NewMockBackend(0), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCacheInvalidationAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true })
	a, b := newInstance(t, srv), newInstance(t, srv)
	tok := a.login("alice@example.com", "alice-secret")
	const me, orders = "/api/me", "/api/me/orders?offset=0&limit=5"

	// Warm A's cache, then prove that hot requests are served from it: not
	// one data command reaches Redis. Without this the checks below would
	// pass for a service that never caches.
	for range 2 {
		a.get(me, tok)
		a.get(orders, tok)
	}
	before := dataCommands(t, raw)
	for range 10 {
		a.get(me, tok)
		a.get(orders, tok)
	}
	if got := dataCommands(t, raw) - before; got != 0 {
		t.Fatalf("20 hot requests on a warm instance ran %d data commands in Redis, want 0", got)
	}

	t.Run("another writer saves a new version", func(t *testing.T) {
		p := fullProfile(t, profile.DemoUserID("alice@example.com"))
		p.Basic.FirstName = "Edited by B"
		p.Orders[0].Status = "edited-by-b"
		other := redisrepo.NewProfileStore(srv.Client(t), redisrepo.ProfileOptions{})
		if err := other.Save(context.Background(), p, ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, "A serves B's basic data", func() bool { return strings.Contains(a.get(me, tok), "Edited by B") })
		eventually(t, "A serves B's orders", func() bool { return strings.Contains(a.get(orders, tok), "edited-by-b") })
	})

	t.Run("a raw write to a cached key", func(t *testing.T) {
		a.get(me, tok) // cached again after the new version
		keys := redistest.Keys(t, raw, "*{u:"+profile.DemoUserID("alice@example.com").String()+"}*:basic")
		if len(keys) != 1 {
			t.Fatalf("basic keys = %q, want one", keys)
		}
		if err := raw.Do(context.Background(), raw.B().Hset().Key(keys[0]).FieldValue().
			FieldValue("first_name", "Edited raw").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "A serves the raw write", func() bool { return strings.Contains(a.get(me, tok), "Edited raw") })
	})

	t.Run("revoked through the other instance", func(t *testing.T) {
		tok2 := a.login("alice@example.com", "alice-secret")
		a.get(me, tok2)
		a.get(me, tok2)
		if code, body := b.do(http.MethodPost, "/api/logout", tok2, nil); code != http.StatusNoContent {
			t.Fatalf("logout through B: %d %s", code, body)
		}
		eventually(t, "A rejects the token B revoked", func() bool {
			code, _ := a.do(http.MethodGet, me, tok2, nil)
			return code == http.StatusUnauthorized
		})
	})

	t.Run("revoked through the same instance", func(t *testing.T) {
		// The invalidation of our own revocation reaches our own cache a
		// moment after the write, so a single round could pass by luck
		// without the revoking instance's own guard; several rounds make
		// that guard's absence show.
		tokens := make([]string, revokeRounds)
		for i := range tokens {
			tokens[i] = a.login("alice@example.com", "alice-secret")
			a.get(me, tokens[i])
			a.get(me, tokens[i])
		}
		for i, tk := range tokens {
			if code, body := a.do(http.MethodPost, "/api/logout", tk, nil); code != http.StatusNoContent {
				t.Fatalf("round %d: logout through A: %d %s", i, code, body)
			}
			// No polling: the revoking instance must never serve its own
			// revoked token from its cache, not even for a millisecond.
			if code, body := a.do(http.MethodGet, me, tk, nil); code != http.StatusUnauthorized {
				t.Fatalf("round %d: A right after its own logout: %d %s, want 401", i, code, body)
			}
		}
	})

	t.Run("logout-all through the other instance", func(t *testing.T) {
		t4, t5 := a.login("alice@example.com", "alice-secret"), a.login("alice@example.com", "alice-secret")
		a.get(me, t4)
		a.get(me, t5)
		if code, body := b.do(http.MethodPost, "/api/logout-all", t4, nil); code != http.StatusOK {
			t.Fatalf("logout-all through B: %d %s", code, body)
		}
		for _, tk := range []string{t4, t5, tok} {
			eventually(t, "A rejects every session B ended", func() bool {
				code, _ := a.do(http.MethodGet, me, tk, nil)
				return code == http.StatusUnauthorized
			})
		}
	})
}

// revokeRounds is how many sessions the same-instance revocation check ends.
const revokeRounds = 10

// discardWriter is a ResponseWriter that keeps only the status, so that
// BenchmarkRequest measures the service, not httptest.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkRequest is one authenticated request through the real handler
// (auth middleware, profile service, client-side cache, JSON) on a real
// redis-server: the hot path that `make bench` loads with wrk.
func BenchmarkRequest(b *testing.B) {
	in := newInstance(b, redistest.Start(b))
	alice := in.login("alice@example.com", "alice-secret")
	carol := in.login("carol@example.com", "carol-secret")
	for _, bc := range []struct{ name, path, token string }{
		{"me/alice", "/api/me", alice},
		{"me/carol", "/api/me", carol},
		{"auth/alice", "/auth", alice},
		{"orders/alice/offset=0", "/api/me/orders?offset=0&limit=20", alice},
		{"orders/carol/offset=5000", "/api/me/orders?offset=5000&limit=20", carol},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, bc.path, nil)
			req.RemoteAddr = "127.0.0.1:1234"
			req.Header.Set("Authorization", "Bearer "+bc.token)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.code = http.StatusOK
				in.h.ServeHTTP(w, req)
				if w.code != http.StatusOK {
					b.Fatalf("GET %s: %d", bc.path, w.code)
				}
			}
		})
	}
}
