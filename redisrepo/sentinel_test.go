package redisrepo_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/redisrepo"
)

// TestNewClientSentinel: a REDIS_URL with master_set gives a client that
// finds the master through the sentinels, caches reads client-side, and
// after the master is killed follows the promoted replica without serving
// what it had cached from the dead master.
func TestNewClientSentinel(t *testing.T) {
	st := redistest.StartSentinel(t)
	c, err := redisrepo.NewClient(st.URL(), time.Second)
	if err != nil {
		t.Fatalf("NewClient(%s): %v", st.URL(), err)
	}
	t.Cleanup(c.Close)
	if c.Mode() != rueidis.ClientModeSentinel {
		t.Fatalf("Mode = %s, want %s", c.Mode(), rueidis.ClientModeSentinel)
	}
	for addr := range c.Nodes() {
		if addr != st.Nodes[0].Addr {
			t.Errorf("the client talks to %s, want the master %s", addr, st.Nodes[0].Addr)
		}
	}

	ctx := context.Background()
	const key = "sentinel-test:{t}:k"
	read := func() (string, bool, error) {
		// Bounded: rueidis retries a read on a dead master until the
		// context ends.
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		r := c.DoCache(ctx, c.B().Get().Key(key).Cache(), time.Minute)
		v, err := r.ToString()
		return v, r.IsCacheHit(), err
	}
	// eventually polls until the client reads want: invalidations and
	// failovers arrive on their own time.
	eventually := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			v, _, err := read()
			if err == nil && v == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: read %q, %v; want %q", what, v, err, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	set := func(s *redistest.Server, v string) {
		t.Helper()
		if out := s.Command(t, "SET", key, v); out != "OK" {
			t.Fatalf("SET on %s = %q", s.Addr, out)
		}
	}

	set(st.Nodes[0], "v1")
	if v, hit, err := read(); err != nil || v != "v1" || hit {
		t.Fatalf("first read = %q, hit %v, %v; want v1 from Redis", v, hit, err)
	}
	if v, hit, err := read(); err != nil || v != "v1" || !hit {
		t.Fatalf("second read = %q, hit %v, %v; want v1 from the client-side cache", v, hit, err)
	}
	set(st.Nodes[0], "v2")
	eventually("after a write on the master (CLIENT TRACKING invalidates)", "v2")
	if _, hit, _ := read(); !hit {
		t.Fatal("v2 is not cached")
	}

	st.WaitReplicated(t, st.Nodes[0])
	st.Nodes[0].Stop()
	promoted := st.WaitFailover(t, st.Nodes[0])
	if promoted != st.Nodes[1] {
		t.Fatalf("promoted %s, want the replica %s", promoted.Addr, st.Nodes[1].Addr)
	}
	// Had the client kept what it cached from the dead master, it would
	// answer v2 forever: nothing invalidates it any more.
	set(promoted, "v3")
	eventually("after the failover", "v3")
	if _, hit, _ := read(); !hit {
		t.Error("after the failover, reads are not cached")
	}
	set(promoted, "v4")
	eventually("after a write on the promoted master", "v4")
}

// TestNewClientSentinelErrors: a Sentinel REDIS_URL that cannot work stops
// the program with one clear line.
func TestNewClientSentinelErrors(t *testing.T) {
	st := redistest.StartSentinel(t)
	sentinels := strings.TrimPrefix(st.URL(), "redis://")
	sentinels = sentinels[:strings.Index(sentinels, "master_set=")]
	for _, tt := range []struct{ name, url, want string }{
		{"unknown master set", "redis://" + sentinels + "master_set=nosuch", `redis: connect to master "nosuch" through sentinels ` + st.Sentinels[0].Addr},
		{"TLS", "rediss://" + sentinels + "master_set=" + redistest.MasterSet, "redis: parse REDIS_URL: rediss:// with master_set"},
		{"no master_set", "redis://" + st.Sentinels[0].Addr, "redis: " + st.Sentinels[0].Addr + " is a Redis Sentinel, not a Redis: name the master with ?master_set=<name>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := redisrepo.NewClient(tt.url, time.Second)
			if err == nil {
				c.Close()
				t.Fatalf("NewClient(%s) = nil error, want one", tt.url)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want the prefix %q", err, tt.want)
			}
			t.Logf("%s", err)
		})
	}
}

// TestNewClientSentinelPassword: sentinels that require a password are
// reached with WithSentinelPassword (REDIS_SENTINEL_PASSWORD); without it,
// or with a wrong one, NewClient fails, and never shows the password.
func TestNewClientSentinelPassword(t *testing.T) {
	const password = "s3ntinel-secret"
	st := redistest.StartSentinelWith(t, redistest.SentinelOptions{Password: password})
	for _, tt := range []struct {
		name     string
		password string
		wantErr  string
	}{
		{"right", password, ""},
		{"missing", "", "NOAUTH"},
		{"wrong", "wrong-secret", "WRONGPASS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := redisrepo.NewClient(st.URL(), time.Second, redisrepo.WithSentinelPassword(tt.password))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewClient: %v", err)
				}
				defer c.Close()
				if err := redisrepo.Ping(context.Background(), c); err != nil {
					t.Errorf("Ping through authenticated sentinels: %v", err)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("NewClient = nil error, want one")
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantErr) || strings.Contains(msg, "secret") {
				t.Errorf("error %q: want %q in it and no password", msg, tt.wantErr)
			}
		})
	}
}
