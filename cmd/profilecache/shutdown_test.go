package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/internal/syncbuf"
	"github.com/profilecache/profilecache/profile"
)

// listenURL waits for run's "listening" log line and returns its URL.
func listenURL(t *testing.T, log *syncbuf.Buffer, errc <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(log.String()))
		for sc.Scan() {
			var line struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				return line.URL
			}
		}
		select {
		case err := <-errc:
			t.Fatalf("run returned before listening: %v\n%s", err, log)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("run did not log its address:\n%s", log)
	return ""
}

// TestShutdownDrainsInFlightRequests: when the signal context ends (SIGTERM
// in main), a request already being served still gets its full answer, and
// run returns nil once it has.
func TestShutdownDrainsInFlightRequests(t *testing.T) {
	srv := redistest.Start(t)
	env := map[string]string{
		"ADDR":           "127.0.0.1:0",
		"REDIS_URL":      "redis://" + srv.Addr,
		"SESSION_SECRET": strings.Repeat("drain-secret-", 3),
		// Slow enough that the login is surely still running when the
		// shutdown starts; no assertion depends on the figure.
		"BACKEND_LATENCY": "2s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &syncbuf.Buffer{}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, func(k string) string { return env[k] }, log) }()
	base := listenURL(t, log, errc)

	type result struct {
		status int
		body   string
		err    error
	}
	resc := make(chan result, 1)
	go func() {
		c := &http.Client{Timeout: 60 * time.Second}
		resp, err := c.Post(base+"/api/login", "application/json",
			strings.NewReader(`{"email":"alice@example.com","password":"alice-secret"}`))
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		resc <- result{status: resp.StatusCode, body: string(b)}
	}()

	// The login holds alice's reload lock while it loads her profile from
	// the (slow) backend: once the lock exists, the request is in flight.
	rc := srv.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true })
	lock := "pc:{u:" + profile.DemoUserID("alice@example.com").String() + "}:lock"
	for deadline := time.Now().Add(60 * time.Second); ; {
		n, err := rc.Do(context.Background(), rc.B().Exists().Key(lock).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		select {
		case r := <-resc:
			t.Fatalf("login finished before the test saw it in flight: %+v", r)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the login never took the reload lock %s", lock)
		}
		time.Sleep(5 * time.Millisecond)
	}

	cancel() // what SIGTERM does in main

	r := <-resc
	if r.err != nil || r.status != http.StatusOK || !strings.Contains(r.body, `"token"`) {
		t.Fatalf("in-flight login during shutdown: %d %q %v, want 200 with a token", r.status, r.body, r.err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run after a clean drain: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("run did not return after the in-flight request completed")
	}
	if !strings.Contains(log.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", log)
	}
	u, _ := url.Parse(base)
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after run returned", u.Host)
	}
}
