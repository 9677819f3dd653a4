package redisrepo_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

func TestNewClientBadURL(t *testing.T) {
	tests := []struct{ name, url string }{
		{"wrong scheme", "http://localhost:6379"},
		{"bad db", "redis://localhost:6379/zero"},
		{"unparsable with a password", "redis://user:s3cret@[::1:6379"},
		{"control character with a password", "redis://user:s3cret@host\x7f:6379"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := redisrepo.NewClient(tt.url, time.Second)
			if err == nil {
				c.Close()
				t.Fatal("NewClient = nil error, want one")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "redis: parse REDIS_URL: ") || strings.Contains(msg, "s3cret") {
				t.Errorf("error %q: want the prefix %q and no password", msg, "redis: parse REDIS_URL: ")
			}
		})
	}
}

func TestNewClientAndPing(t *testing.T) {
	srv := redistest.Start(t)
	url := os.Getenv(redistest.EnvURL)
	if url == "" {
		url = "redis://" + srv.Addr + "/0"
	}
	c, err := redisrepo.NewClient(url, 2*time.Second)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer c.Close()
	if err := redisrepo.Ping(context.Background(), c); err != nil {
		t.Errorf("Ping: %v", err)
	}

	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := redisrepo.Ping(ctx, c); err == nil {
		t.Error("Ping with the server down = nil, want an error")
	}
}

func TestNewClientUnreachable(t *testing.T) {
	c, err := redisrepo.NewClient("redis://127.0.0.1:1", 500*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatal("NewClient to a closed port = nil error, want one")
	}
	if !strings.HasPrefix(err.Error(), "redis: connect to 127.0.0.1:1: ") {
		t.Errorf("error = %q", err)
	}
}

// The embedded server is what `make run` uses: every script and
// transaction must work on it too, and its TTLs must run out in real time.
// (Storage behaviour itself is proven against redis-server above.)
func TestEmbeddedSmoke(t *testing.T) {
	c, stop, err := redisrepo.StartEmbedded()
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	defer stop()
	ctx := context.Background()
	uid := uuid.New()
	if err := redisrepo.Ping(ctx, c); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	now := time.Now()
	logs := &logRecorder{}
	ps := redisrepo.NewProfileStore(c, redisrepo.ProfileOptions{TTL: time.Minute, Now: func() time.Time { return now },
		Logger: slog.New(logs)})
	mustSave(t, ps, alice(uid))
	mustSave(t, ps, richProfile(uid, "A", 25, 6, 3)) // a replace
	q := profile.Query{Basic: true, Interests: true, Orders: page(20, 20), Invoices: page(0, 5), Inquiries: page(0, 5)}
	v, err := ps.Read(ctx, uid, q)
	if err != nil || !reflect.DeepEqual(v, viewOf(alice(uid), q)) {
		t.Fatalf("Read = %s, %v; want alice", describe(v), err)
	}
	now = now.Add(40 * time.Second) // due for renewal
	if _, err := ps.Read(ctx, uid, q); err != nil {
		t.Fatalf("Read with renewal: %v", err)
	}
	if w := logs.warnings(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
	release, ok, err := ps.TryLock(ctx, uid, time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if err := release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ps.Delete(ctx, uid); err != nil {
		t.Fatal(err)
	}
	_, err = ps.Read(ctx, uid, q)
	wantNotFound(t, "Read after Delete", err)

	ts := redisrepo.NewTokenStore(c, redisrepo.TokenOptions{})
	mustCreate(t, ts, newSession(uid, "s1", time.Now()), time.Minute)
	mustCreate(t, ts, newSession(uid, "s2", time.Now()), 300*time.Millisecond)
	if err := ts.Touch(ctx, uid, "s1", time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := ts.PutData(ctx, uid, "s1", "k", []byte{0, 1, 255}); err != nil {
		t.Fatal(err)
	}
	if got, err := ts.GetData(ctx, uid, "s1", "k"); err != nil || string(got) != "\x00\x01\xff" {
		t.Errorf("GetData = %q, %v", got, err)
	}
	if list, err := ts.List(ctx, uid); err != nil || len(list) != 2 {
		t.Errorf("List = %d sessions, %v; want 2", len(list), err)
	}
	// s2's 300 ms run out although nobody fast-forwards by hand.
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := ts.Lookup(ctx, uid, "s2")
		if errors.Is(err, profile.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a 300ms session still there after 3s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := ts.RevokeAll(ctx, uid); n != 1 || err != nil {
		t.Errorf("RevokeAll = %d, %v; want 1, nil", n, err)
	}
	stop() // twice is fine
}
