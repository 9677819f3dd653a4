package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
)

// Session security end to end, on a real redis-server. TTLs are a few
// seconds; the tests poll for outcomes and never assert how long they took.

// sessionKeys lists the user's session token hashes in Redis (not their
// data hashes).
func (e *e2e) sessionKeys(t *testing.T, email string) []string {
	t.Helper()
	var out []string
	for _, k := range redistest.Keys(t, e.redis, "pc:{u:"+profile.DemoUserID(email).String()+"}:s:*") {
		if !strings.HasSuffix(k, ":data") {
			out = append(out, k)
		}
	}
	return out
}

func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jwtHeader decodes a JWT's header.
func jwtHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TOKEN_TTL is an idle timeout: activity keeps a session alive past it
// (the expiry slides), and a session left alone for TOKEN_TTL is gone from
// Redis (its TTL ran out) and refused.
func TestE2EIdleTimeout(t *testing.T) {
	t.Parallel()
	e := startE2EOn(t, redistest.Start(t), map[string]string{"TOKEN_TTL": "3s"})
	c := apiClient(t)
	tok := apiLoginToken(t, c, e.url, "alice@example.com", "alice-secret")

	// Busy for longer than TOKEN_TTL: never refused.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if h := call(c, e.url, http.MethodGet, "/api/me", tok, ""); h.status != http.StatusOK {
			t.Fatalf("an active session was refused: %v", h)
		}
	}
	if len(e.sessionKeys(t, "alice@example.com")) != 1 {
		t.Fatal("the active session is not in Redis")
	}
	// Idle: Redis expires the token hash, then the token is refused.
	waitUntil(t, "the idle session expires in Redis", 20*time.Second, func() bool {
		return len(e.sessionKeys(t, "alice@example.com")) == 0
	})
	if h := call(c, e.url, http.MethodGet, "/api/me", tok, ""); h.status != http.StatusUnauthorized || !isErrorJSON(h.body) {
		t.Errorf("an idle-expired session: %v, want 401 JSON", h)
	}
}

// SESSION_MAX_AGE is an absolute timeout: however active, the session ends.
func TestE2EAbsoluteTimeout(t *testing.T) {
	t.Parallel()
	e := startE2EOn(t, redistest.Start(t), map[string]string{"TOKEN_TTL": "2s", "SESSION_MAX_AGE": "3s"})
	c := apiClient(t)
	tok := apiLoginToken(t, c, e.url, "alice@example.com", "alice-secret")

	ok := 0
	waitUntil(t, "an always-active session ends", 20*time.Second, func() bool {
		h := call(c, e.url, http.MethodGet, "/api/me", tok, "")
		switch h.status {
		case http.StatusOK:
			ok++
			time.Sleep(200 * time.Millisecond)
			return false
		case http.StatusUnauthorized:
			return true
		}
		t.Fatalf("unexpected answer: %v", h)
		return false
	})
	if ok == 0 {
		t.Fatal("the session never worked")
	}
	if h := call(c, e.url, http.MethodGet, "/api/me", tok, ""); h.status != http.StatusUnauthorized {
		t.Errorf("after the maximum age: %v, want 401 for good", h)
	}
	waitUntil(t, "the expired session leaves Redis", 10*time.Second, func() bool {
		return len(e.sessionKeys(t, "alice@example.com")) == 0
	})
}

// Key rotation: set SESSION_SECRET to a new key and SESSION_SECRET_PREVIOUS
// to the old one, and sessions signed with the old key go on working while
// new ones carry the new key's kid; drop PREVIOUS and the old ones end.
func TestE2EKeyRotation(t *testing.T) {
	srv := redistest.Start(t)
	oldKey, newKey := strings.Repeat("old-key-", 4), strings.Repeat("new-key-", 4)
	before := startE2EOn(t, srv, map[string]string{"SESSION_SECRET": oldKey})
	c := apiClient(t)
	oldTok := apiLoginToken(t, c, before.url, "alice@example.com", "alice-secret")

	rotated := startE2EOn(t, srv, map[string]string{"SESSION_SECRET": newKey, "SESSION_SECRET_PREVIOUS": oldKey})
	if h := call(c, rotated.url, http.MethodGet, "/api/me", oldTok, ""); h.status != http.StatusOK {
		t.Errorf("an old-key session during rotation: %v, want 200", h)
	}
	newTok := apiLoginToken(t, c, rotated.url, "bob@example.com", "bob-secret")
	oldKid, newKid := jwtHeader(t, oldTok)["kid"], jwtHeader(t, newTok)["kid"]
	if oldKid == nil || newKid == nil || oldKid == newKid {
		t.Errorf("kid old %v, new %v: want two different key ids", oldKid, newKid)
	}
	if h := call(c, before.url, http.MethodGet, "/api/me", newTok, ""); h.status != http.StatusUnauthorized {
		t.Errorf("a new-key session on an instance without the new key: %v, want 401", h)
	}
	// Step 1 of a rolling rotation (docs/guarantees.md): instances that still sign with
	// the old key but already verify the new one accept both.
	staged := startE2EOn(t, srv, map[string]string{"SESSION_SECRET": oldKey, "SESSION_SECRET_PREVIOUS": newKey})
	for _, tok := range []string{oldTok, newTok} {
		if h := call(c, staged.url, http.MethodGet, "/api/me", tok, ""); h.status != http.StatusOK {
			t.Errorf("an instance staged for rotation: %v, want 200", h)
		}
	}

	after := startE2EOn(t, srv, map[string]string{"SESSION_SECRET": newKey})
	if h := call(c, after.url, http.MethodGet, "/api/me", oldTok, ""); h.status != http.StatusUnauthorized {
		t.Errorf("an old-key session once PREVIOUS is gone: %v, want 401", h)
	}
	if h := call(c, after.url, http.MethodGet, "/api/me", newTok, ""); h.status != http.StatusOK {
		t.Errorf("a new-key session after rotation: %v, want 200", h)
	}
}

// Revocation on one instance takes effect on every other instance sharing
// the Redis, although each caches sessions client-side: Redis invalidates
// the cached copies.
func TestE2ERevocationAcrossInstances(t *testing.T) {
	redistest.Targets(t, testE2ERevocationAcrossInstances)
}

func testE2ERevocationAcrossInstances(t *testing.T, target redistest.Target) {
	a, b := startE2EOn(t, target, nil), startE2EOn(t, target, nil)
	c := apiClient(t)
	login := func() string { return apiLoginToken(t, c, a.url, "alice@example.com", "alice-secret") }
	// warm makes sure b has the session in its client-side cache.
	warm := func(tok string) {
		t.Helper()
		for range 3 {
			if h := call(c, b.url, http.MethodGet, "/api/me", tok, ""); h.status != http.StatusOK {
				t.Fatalf("instance b: %v", h)
			}
		}
	}
	refusedOnB := func(what, tok string) {
		t.Helper()
		start := time.Now()
		waitUntil(t, what+" seen by instance b", 5*time.Second, func() bool {
			return call(c, b.url, http.MethodGet, "/api/me", tok, "").status == http.StatusUnauthorized
		})
		t.Logf("%s: refused on instance b after %v", what, time.Since(start).Round(time.Microsecond))
		if h := call(c, b.url, http.MethodGet, "/api/me", tok, ""); h.status != http.StatusUnauthorized {
			t.Errorf("%s: instance b accepts the session again: %v", what, h)
		}
	}

	tok := login()
	warm(tok)
	if h := call(c, a.url, http.MethodPost, "/api/logout", tok, ""); h.status != http.StatusNoContent {
		t.Fatalf("logout on a: %v", h)
	}
	refusedOnB("logout", tok)

	t1, t2, keep := login(), login(), login()
	warm(t1)
	warm(t2)
	warm(keep)
	// Revoke one session by id from another session of the user.
	var sessions []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	h := call(c, a.url, http.MethodGet, "/api/sessions", t1, "")
	if err := json.Unmarshal([]byte(h.body), &sessions); err != nil || len(sessions) != 3 {
		t.Fatalf("sessions: %v (%v)", h, err)
	}
	var current string
	for _, s := range sessions {
		if s.Current {
			current = s.ID
		}
	}
	if h := call(c, a.url, http.MethodDelete, "/api/sessions/"+current, keep, ""); h.status != http.StatusNoContent {
		t.Fatalf("revoke by id on a: %v", h)
	}
	refusedOnB("revoke by id", t1)

	if h := call(c, a.url, http.MethodPost, "/api/logout-all", keep, ""); h.status != http.StatusOK {
		t.Fatalf("logout-all on a: %v", h)
	}
	refusedOnB("logout-all (second session)", t2)
	refusedOnB("logout-all (own session)", keep)
}
