package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/redisproc"
	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
)

// TestE2ESentinelFailover runs the service on a Redis Sentinel setup (a
// master, a replica, three sentinels) through a REDIS_URL with master_set,
// kills the master under a steady read/write load, and checks, without
// restarting the service: no 500 ever, only 503 JSON (or success) while
// the failover lasts; sessions, session data and profiles made (and
// replicated) before the kill still work on the promoted replica; the
// killed node, restarted, rejoins as a replica, and the service keeps
// writing to the new master meanwhile. It logs the failover window
// (docs/scale.md#redis-sentinel).
func TestE2ESentinelFailover(t *testing.T) {
	st := redistest.StartSentinel(t)
	oldMaster := st.Master(t)
	if oldMaster != st.Nodes[0] {
		t.Fatalf("the sentinels name %v as master, want %s", oldMaster, st.Nodes[0].Addr)
	}
	// Logins wait for the replica (REDIS_WAIT_REPLICAS), through the
	// sentinel client's connection to whichever node is master.
	e := startE2EOn(t, st, map[string]string{"REDIS_TIMEOUT": outageTimeout.String(), "REDIS_WAIT_REPLICAS": "1"})
	if !strings.Contains(e.log.String(), `"master":"`+oldMaster.Addr+`"`) {
		t.Errorf("the startup log does not name the master %s:\n%s", oldMaster.Addr, e.log)
	}
	c := apiClient(t)
	ctx := context.Background()

	// Before the kill: sessions, session data and a profile, replicated.
	alice := apiLoginToken(t, c, e.url, "alice@example.com", "alice-secret")
	bob := apiLoginToken(t, c, e.url, "bob@example.com", "bob-secret")
	if h := call(c, e.url, http.MethodPut, "/api/session/data/cart", alice, "before the kill"); h.status != http.StatusNoContent && h.status != http.StatusOK {
		t.Fatalf("put session data: %v", h)
	}
	metaKey := "pc:{u:" + profile.DemoUserID("alice@example.com").String() + "}:meta"
	meta := func() map[string]string {
		t.Helper()
		m, err := e.redis.Do(ctx, e.redis.B().Hgetall().Key(metaKey).Build()).AsStrMap()
		if err != nil || m["gen"] == "" {
			t.Fatalf("HGETALL %s = %v, %v; want alice's profile", metaKey, m, err)
		}
		return m
	}
	metaBefore := meta()
	st.WaitReplicated(t, oldMaster)

	var (
		mu   sync.Mutex
		hits []hit
		wg   sync.WaitGroup
	)
	record := func(h hit) {
		mu.Lock()
		defer mu.Unlock()
		hits = append(hits, h)
	}
	stop := make(chan struct{})
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)
	const workers = 6
	for w := range workers {
		wg.Go(func() {
			tok := []string{alice, bob}[w%2]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				switch i % 4 {
				case 0:
					record(call(c, e.url, http.MethodGet, "/api/me", tok, ""))
				case 1:
					record(call(c, e.url, http.MethodGet, fmt.Sprintf("/api/me/orders?offset=%d&limit=10", i%20), tok, ""))
				case 2:
					record(call(c, e.url, http.MethodPut, fmt.Sprintf("/api/session/data/k%d", w), tok, fmt.Sprint(i)))
				case 3:
					record(call(c, e.url, http.MethodGet, "/api/sessions", tok, ""))
				}
			}
		})
	}
	// writesOK counts successful writes that started after from.
	writesOK := func(from time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, h := range hits {
			if h.method == http.MethodPut && !h.start.Before(from) && h.status == http.StatusNoContent {
				n++
			}
		}
		return n
	}
	waitWrites := func(what string, from time.Time) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second) // a liveness bound, not a latency target
		for writesOK(from) < 20 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: writes do not succeed", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitWrites("before the kill", time.Now())

	killAt := time.Now()
	oldMaster.Stop() // SIGKILL
	promoted := st.WaitFailover(t, oldMaster)
	promotedAt := time.Now()
	waitWrites("after the failover", promotedAt)
	recoveredAt := time.Now()
	// The promoted master has no replica yet: a login does not wait for one.
	afterFailover := apiLoginToken(t, c, e.url, "bob@example.com", "bob-secret")

	// The old master comes back empty (no persistence) as a master, until
	// the sentinels turn it into a replica of the new one; the service
	// keeps writing meanwhile, to the new master only.
	oldMaster.Restart(t)
	st.WaitReplicaOf(t, oldMaster, promoted)
	rejoinedAt := time.Now()
	waitWrites("after the rejoin", rejoinedAt)
	afterRejoin := apiLoginToken(t, c, e.url, "bob@example.com", "bob-secret")
	stopLoad()

	// What was made before the kill is on the promoted replica.
	if got := meta(); got["gen"] != metaBefore["gen"] || got["loaded"] != metaBefore["loaded"] {
		t.Errorf("alice's profile meta after the failover = %v, want %v: the profile was lost and reloaded", got, metaBefore)
	}
	for _, tok := range []string{alice, bob, afterFailover, afterRejoin} {
		for _, path := range []string{"/api/me", "/api/me/orders?offset=20&limit=10", "/api/sessions"} {
			if h := call(c, e.url, http.MethodGet, path, tok, ""); h.status != http.StatusOK {
				t.Errorf("a session made before the kill or after the failover: %v, want 200", h)
			}
		}
	}
	// Every login was confirmed by the replica there was: none before the
	// kill was left to chance, none after it waited for a missing one.
	if strings.Contains(e.log.String(), "login not confirmed by the replicas") {
		t.Errorf("a login was not confirmed by the replica:\n%s", grepLines(e.log.String(), "not confirmed"))
	}
	if h := call(c, e.url, http.MethodGet, "/api/session/data/cart", alice, ""); h.status != http.StatusOK || h.body != "before the kill" {
		t.Errorf("session data written before the kill: %v, want 200 %q", h, "before the kill")
	}
	// The rejoined node holds the promoted master's data (a full sync).
	if n := oldMaster.Command(t, "EXISTS", metaKey); n != "1" {
		t.Errorf("EXISTS %s on the rejoined replica = %s, want 1", metaKey, n)
	}
	if h := call(c, e.url, http.MethodGet, "/readyz", "", ""); h.status != http.StatusOK {
		t.Errorf("/readyz at the end: %v", h)
	}

	// Every answer: success, or 503 JSON while the failover lasts (from
	// the kill until writes succeed again); a request that started after
	// that must succeed, while the killed node comes back too.
	var firstFail, lastFail time.Time
	statuses := map[string]map[int]int{}
	for _, h := range hits {
		phase := "before"
		switch {
		case !h.start.Before(rejoinedAt):
			phase = "rejoined"
		case !h.start.Before(recoveredAt):
			phase = "restart"
		case !h.end.Before(killAt):
			phase = "failover"
		}
		if statuses[phase] == nil {
			statuses[phase] = map[int]int{}
		}
		statuses[phase][h.status]++
		ok := h.status == http.StatusOK || h.status == http.StatusNoContent
		switch {
		case h.err != nil:
			t.Errorf("%s: %v", phase, h)
		case ok:
		case phase == "failover" && h.status == http.StatusServiceUnavailable && isErrorJSON(h.body):
			if firstFail.IsZero() || h.start.Before(firstFail) {
				firstFail = h.start
			}
			if h.end.After(lastFail) {
				lastFail = h.end
			}
		default:
			t.Errorf("%s: %v, want 2xx (or 503 JSON during the failover)", phase, h)
		}
	}
	if firstFail.IsZero() {
		t.Fatal("no 503 after the kill: the failover was not observed")
	}
	noServerErrors(t, e)

	t.Logf("kill -> first 503: %v; failover window (first 503 to last 503): %v; kill -> sentinels name %s: %v; "+
		"kill -> writes succeed again: %v; restarted node rejoined %v after its restart (REDIS_TIMEOUT %v)",
		firstFail.Sub(killAt).Round(time.Millisecond), lastFail.Sub(firstFail).Round(time.Millisecond), promoted.Addr,
		promotedAt.Sub(killAt).Round(time.Millisecond), recoveredAt.Sub(killAt).Round(time.Millisecond),
		rejoinedAt.Sub(recoveredAt).Round(time.Millisecond), outageTimeout)
	t.Logf("statuses by phase: %v", statuses)
}

// TestE2ESentinelUnreplicatedWrites pins down what a failover loses:
// replication is asynchronous, so what the master acknowledged and had
// not yet sent to the replica is gone once the replica is promoted. The
// test holds such writes back for certain: it freezes the replica and
// queues a large value ahead of them in the master's replication stream,
// then kills the master. A login made then is lost (its token answers
// 401, and signing in again works), a logout made then is undone (the
// session works again), session data written then reverts to the value
// before; nothing answers 500. REDIS_WAIT_REPLICAS cannot save a login
// the replica cannot confirm: it logs it. The sentinels require a password
// (REDIS_SENTINEL_PASSWORD).
func TestE2ESentinelUnreplicatedWrites(t *testing.T) {
	// Sentinels with a password, this time.
	const password = "sentinel-secret"
	st := redistest.StartSentinelWith(t, redistest.SentinelOptions{Password: password})
	master, replica := st.Nodes[0], st.Nodes[1]
	env := map[string]string{"REDIS_TIMEOUT": outageTimeout.String(), "REDIS_SENTINEL_PASSWORD": password}
	// The instance that logs in waits for the replica, to no avail here:
	// the replica is frozen, so the login succeeds unconfirmed (and warns).
	e := startE2EOn(t, st, map[string]string{"REDIS_TIMEOUT": outageTimeout.String(), "REDIS_SENTINEL_PASSWORD": password, "REDIS_WAIT_REPLICAS": "1"})
	// A second instance: the first one refuses a session it revoked
	// itself for a few seconds, whatever Redis says (redisrepo/revoked.go).
	other := startE2EOn(t, st, env)
	c := apiClient(t)

	kept := apiLoginToken(t, c, e.url, "alice@example.com", "alice-secret")
	revoked := apiLoginToken(t, c, e.url, "alice@example.com", "alice-secret")
	if h := call(c, e.url, http.MethodPut, "/api/session/data/cart", kept, "replicated"); h.status != http.StatusNoContent {
		t.Fatalf("put session data: %v", h)
	}
	st.WaitReplicated(t, master)

	// Freeze the replica and queue more in the master's replication
	// stream than the kernel can buffer on both sides of the link: what is
	// written next waits in the master's memory, behind the filler, and
	// dies with it.
	fill := kernelTCPBuffers(t) + 4<<20
	master.Command(t, "CONFIG", "SET", "client-output-buffer-limit", "replica 0 0 0")
	replica.Pause(t)
	const filler = "sentinel-test:filler"
	chunk := strings.Repeat("x", 4<<20)
	for n := 0; n < fill; n += len(chunk) {
		if _, err := redisproc.Command(master.Addr, "APPEND", filler, chunk); err != nil {
			t.Fatal(err)
		}
	}
	lost := apiLoginToken(t, c, e.url, "bob@example.com", "bob-secret")
	if !strings.Contains(e.log.String(), "login not confirmed by the replicas") {
		t.Error("a login the frozen replica could not confirm was not logged as such")
	}
	if h := call(c, e.url, http.MethodPost, "/api/logout", revoked, ""); h.status != http.StatusNoContent {
		t.Fatalf("logout: %v", h)
	}
	if h := call(c, e.url, http.MethodPut, "/api/session/data/cart", kept, "unreplicated"); h.status != http.StatusNoContent {
		t.Fatalf("put session data: %v", h)
	}
	if h := call(c, e.url, http.MethodGet, "/api/me", revoked, ""); h.status != http.StatusUnauthorized {
		t.Fatalf("a revoked session before the failover: %v, want 401", h)
	}
	master.Stop()
	replica.Resume(t)
	if got := st.WaitFailover(t, master); got != replica {
		t.Fatalf("promoted %s, want the replica %s", got.Addr, replica.Addr)
	}
	if n := replica.Command(t, "EXISTS", filler); n != "0" {
		t.Fatalf("the promoted replica has the filler (EXISTS = %s): the test did not hold writes back", n)
	}
	deadline := time.Now().Add(60 * time.Second) // a liveness bound
	for call(c, e.url, http.MethodGet, "/api/me", kept, "").status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the service did not recover after the failover")
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, inst := range []*e2e{e, other} {
		if h := call(c, inst.url, http.MethodGet, "/api/me", lost, ""); h.status != http.StatusUnauthorized || !isErrorJSON(h.body) {
			t.Errorf("the session of a login the failover lost: %v, want 401 JSON", h)
		}
	}
	if h := call(c, other.url, http.MethodGet, "/api/me", revoked, ""); h.status != http.StatusOK {
		t.Errorf("a session whose logout the failover lost, on another instance: %v, want 200 (the revocation is undone)", h)
	}
	if h := call(c, e.url, http.MethodGet, "/api/session/data/cart", kept, ""); h.status != http.StatusOK || h.body != "replicated" {
		t.Errorf("session data after the failover: %v, want the replicated value", h)
	}
	again := apiLoginToken(t, c, e.url, "bob@example.com", "bob-secret")
	if h := call(c, e.url, http.MethodGet, "/api/me", again, ""); h.status != http.StatusOK || !strings.Contains(h.body, "bob@example.com") {
		t.Errorf("bob after signing in again: %v", h)
	}
	noServerErrors(t, e, other)
}

// noServerErrors fails t on any 5xx but 503 in the instances' logs (they
// log every 5xx at level ERROR, 503s included).
func noServerErrors(t *testing.T, instances ...*e2e) {
	t.Helper()
	for _, inst := range instances {
		for l := range strings.SplitSeq(inst.log.String(), "\n") {
			if strings.Contains(l, `"level":"ERROR"`) && !strings.Contains(l, `"status":503`) || strings.Contains(l, `"status":500`) {
				t.Errorf("app log: %s", l)
			}
		}
	}
}

// kernelTCPBuffers is the most a TCP connection can hold in the kernel:
// the largest send buffer of one end plus the largest receive buffer of
// the other (the third field of tcp_wmem and tcp_rmem).
func kernelTCPBuffers(t *testing.T) int {
	t.Helper()
	total := 0
	for _, name := range []string{"tcp_wmem", "tcp_rmem"} {
		b, err := os.ReadFile("/proc/sys/net/ipv4/" + name)
		if err != nil {
			t.Skipf("kernel TCP buffer sizes unknown: %v", err)
		}
		f := strings.Fields(string(b))
		n, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			t.Fatalf("%s = %q: %v", name, b, err)
		}
		total += n
	}
	return total
}
