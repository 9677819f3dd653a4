package redistest_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
)

func get(t *testing.T, c rueidis.Client, cached bool) (string, bool) {
	t.Helper()
	ctx := context.Background()
	var r rueidis.RedisResult
	if cached {
		r = c.DoCache(ctx, c.B().Get().Key("k").Cache(), time.Minute)
	} else {
		r = c.Do(ctx, c.B().Get().Key("k").Build())
	}
	v, err := r.ToString()
	if err != nil && !rueidis.IsRedisNil(err) {
		t.Fatalf("GET k: %v", err)
	}
	return v, r.IsCacheHit()
}

func set(t *testing.T, c rueidis.Client, v string) {
	t.Helper()
	if err := c.Do(context.Background(), c.B().Set().Key("k").Value(v).Build()).Error(); err != nil {
		t.Fatalf("SET k %s: %v", v, err)
	}
}

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

func TestNewHasClientSideCaching(t *testing.T) {
	c := redistest.New(t)
	set(t, c, "v1")
	get(t, c, true)
	if v, hit := get(t, c, true); v != "v1" || !hit {
		t.Errorf("second cached GET = %q, hit %v; want v1 from the local cache", v, hit)
	}
}

func TestClientsAreIndependent(t *testing.T) {
	srv := redistest.Start(t)
	a, b := srv.Client(t), srv.Client(t)
	set(t, a, "v1")
	get(t, a, true)
	set(t, b, "v2")
	eventually(t, "client a sees b's write", func() bool {
		v, _ := get(t, a, true)
		return v == "v2"
	})
	plain := srv.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true })
	get(t, plain, true)
	if _, hit := get(t, plain, true); hit {
		t.Error("a client with DisableCache hit its cache")
	}
}

func TestStopRestart(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	set(t, c, "v1")

	srv.Stop()
	srv.Stop() // twice is fine
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); err == nil {
		t.Fatal("PING with the server stopped = nil, want an error")
	}

	srv.Restart(t)
	eventually(t, "the client reconnects", func() bool {
		return c.Do(context.Background(), c.B().Ping().Build()).Error() == nil
	})
	if v, _ := get(t, c, false); v != "" {
		t.Errorf("GET k after Restart = %q, want nothing: persistence is off", v)
	}
}

func TestExternalURLIsFlushed(t *testing.T) {
	local := redistest.Start(t)
	set(t, local.Client(t), "left over")
	t.Setenv(redistest.EnvURL, "redis://"+local.Addr+"/0")

	ext := redistest.Start(t)
	if ext.Addr != local.Addr {
		t.Errorf("Addr = %s, want %s from %s", ext.Addr, local.Addr, redistest.EnvURL)
	}
	if v, _ := get(t, redistest.New(t), false); v != "" {
		t.Errorf("GET k on the external server = %q, want it flushed", v)
	}
}
