package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/crmtest"
	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
)

// Bounded memory per user (docs/limits.md, "Memory per user"), end to end:
// the session cap holds across instances under parallel logins, and a
// hostile client that fills everything it can stays within the documented
// bound of Redis bytes.

// limitsEnv lets one client log in as often as the tests need: the cap,
// not the login throttles, is under test. LOGIN_ACCOUNT_* are the
// per-account throttle's settings (ignored by builds without it).
var limitsEnv = map[string]string{
	"LOGIN_BURST":           "100000",
	"LOGIN_RATE":            "100000",
	"LOGIN_ACCOUNT_BURST":   "100000",
	"LOGIN_ACCOUNT_RATE":    "1000",
	"MAX_SESSIONS_PER_USER": "20",
}

const maxSessions = 20 // MAX_SESSIONS_PER_USER in limitsEnv, the default

// limitsCRM is a CRM for the account under test, in BACKEND_URL form: it
// checks passwords without bcrypt, which under -race on two shared cores
// makes 100 parallel logins of the mock CRM take minutes. The login path of
// the service is the same.
func limitsCRM(t *testing.T, email, password string) (map[string]string, uuid.UUID) {
	t.Helper()
	crm := crmtest.New(t)
	uid := crm.AddDemo(t, email, password)
	env := maps.Clone(limitsEnv)
	env["BACKEND_URL"] = crm.URL
	return env, uid
}

// parallelLogins logs email in n times at once, spread over the instances
// round robin, and returns the tokens in login order of their goroutines.
func parallelLogins(t *testing.T, c *http.Client, email, password string, n int, instances ...*e2e) []string {
	t.Helper()
	tokens := make([]string, n)
	failures := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)
			h := call(c, instances[i%len(instances)].url, http.MethodPost, "/api/login", "", body)
			var out struct{ Token string }
			if h.status != http.StatusOK || json.Unmarshal([]byte(h.body), &out) != nil || out.Token == "" {
				failures[i] = h.String()
				return
			}
			tokens[i] = out.Token
		})
	}
	wg.Wait()
	for _, f := range failures {
		if f != "" {
			t.Fatalf("a parallel login failed: %s", f)
		}
	}
	return tokens
}

// liveOn returns which tokens /api/me accepts on instance e; anything but
// 200 or 401 fails t.
func liveOn(t *testing.T, c *http.Client, e *e2e, tokens []string) []bool {
	t.Helper()
	live := make([]bool, len(tokens))
	for i, tok := range tokens {
		switch h := call(c, e.url, http.MethodGet, "/api/me", tok, ""); h.status {
		case http.StatusOK:
			live[i] = true
		case http.StatusUnauthorized:
			if !isErrorJSON(h.body) {
				t.Errorf("401 without a JSON error: %v", h)
			}
		default:
			t.Fatalf("/api/me: %v, want 200 or 401", h)
		}
	}
	return live
}

// checkIndex checks what Redis holds for the user's sessions: exactly want
// index entries, each with its token hash, and no other token hash.
func checkIndex(t *testing.T, e *e2e, user uuid.UUID, want int) {
	t.Helper()
	ctx := context.Background()
	uid := user.String()
	idx := "pc:{u:" + uid + "}:sessions"
	members, err := e.redis.Do(ctx, e.redis.B().Zrange().Key(idx).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != want {
		t.Errorf("index %s has %d members, want %d", idx, len(members), want)
	}
	var indexed []string
	for _, id := range members {
		k := "pc:{u:" + uid + "}:s:" + id
		indexed = append(indexed, k)
		if n, err := e.redis.Do(ctx, e.redis.B().Exists().Key(k).Build()).AsInt64(); err != nil || n != 1 {
			t.Errorf("index entry %s has no live token hash (%v)", id, err)
		}
	}
	slices.Sort(indexed)
	var tokens []string
	for _, k := range redistest.Keys(t, e.redis, "pc:{u:"+uid+"}:s:*") {
		if !strings.HasSuffix(k, ":data") {
			tokens = append(tokens, k)
		}
	}
	if !slices.Equal(tokens, indexed) {
		t.Errorf("token hashes in Redis:\n%v\nindexed:\n%v", tokens, indexed)
	}
}

// 100 logins of one user at once, spread over two instances of the real
// program on one Redis, leave exactly MAX_SESSIONS_PER_USER sessions, all
// live and all indexed; a second wave of logins after the first ends
// exactly the first wave's survivors.
func TestE2ESessionCapAcrossInstances(t *testing.T) {
	redistest.Targets(t, testE2ESessionCapAcrossInstances)
}

func testE2ESessionCapAcrossInstances(t *testing.T, target redistest.Target) {
	const email, password = "bob@example.com", "bob-secret"
	env, uid := limitsCRM(t, email, password)
	a, b := startE2EOn(t, target, env), startE2EOn(t, target, env)
	c := apiClient(t)

	first := parallelLogins(t, c, email, password, 100, a, b)
	checkIndex(t, a, uid, maxSessions)
	liveA, liveB := liveOn(t, c, a, first), liveOn(t, c, b, first)
	if !slices.Equal(liveA, liveB) {
		t.Errorf("the instances disagree on which sessions live:\na %v\nb %v", liveA, liveB)
	}
	if n := count(liveA); n != maxSessions {
		t.Fatalf("%d of 100 parallel logins answer 200, want exactly %d", n, maxSessions)
	}
	t.Logf("after 100 parallel logins on 2 instances: %d sessions live, %d refused", count(liveA), 100-count(liveA))

	// The first wave's sessions were last seen before the second wave's
	// logins (a few ms apart, so no two share a millisecond).
	time.Sleep(5 * time.Millisecond)
	second := parallelLogins(t, c, email, password, maxSessions, a, b)
	checkIndex(t, a, uid, maxSessions)
	for _, inst := range []*e2e{a, b} {
		// The first wave's survivors were cached on both instances when
		// they answered above; the instance that did not end one learns of
		// it through invalidation, as with any revocation.
		waitUntil(t, "the first wave is refused", 5*time.Second, func() bool {
			return count(liveOn(t, c, inst, first)) == 0
		})
		if n := count(liveOn(t, c, inst, second)); n != maxSessions {
			t.Errorf("%d of the %d newest logins live, want all", n, maxSessions)
		}
	}
	// The listing agrees.
	h := call(c, b.url, http.MethodGet, "/api/sessions", second[0], "")
	var sessions []struct{ ID string }
	if err := json.Unmarshal([]byte(h.body), &sessions); err != nil || len(sessions) != maxSessions {
		t.Errorf("/api/sessions: %d sessions (%v), want %d: %v", len(sessions), err, maxSessions, h)
	}
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// The worst case of docs/limits.md, "Memory per user", for one user:
//
//	bytes ≤ N × (T + ⌈5/4 × B⌉ + K × E + H) + I0 + N × I1 + C + P
//
// N MAX_SESSIONS_PER_USER, B SESSION_DATA_MAX_BYTES, K profile.MaxDataKeys,
// P the user's cached profile. The constants are MEMORY USAGE bytes on
// redis 7.0 (jemalloc); see the doc for how they were measured.
const (
	boundToken      = 800  // T: one token hash, user agent at its 256-byte cap
	boundEntry      = 56   // E: per data entry beyond 5/4 of its bytes
	boundDataHash   = 1024 // H: one data hash's own overhead
	boundIndexFixed = 256  // I0
	boundIndexEntry = 160  // I1: per index entry (skiplist encoding, > 128 entries)
	boundSmall      = 512  // C: reload lock, revocation fence, account login throttle
)

func sessionBound(n, budget int) int {
	return n*(boundToken+(5*budget+3)/4+profile.MaxDataKeys*boundEntry+boundDataHash) + boundIndexFixed + n*boundIndexEntry
}

// A hostile client with one account fills everything the limits allow,
// through the HTTP API: more logins than the cap (with the longest user
// agent kept), and in every session the most data keys, each value sized
// just past an allocator size class so that Redis rounds it up by a
// quarter. MEMORY USAGE over every key of the user stays within the
// documented bound, and comes close to it: the bound is reached, not just
// respected.
func TestE2EHostileMemoryBound(t *testing.T) {
	const email, password = "alice@example.com", "alice-secret"
	env, uid := limitsCRM(t, email, password)
	delete(env, "LOGIN_ACCOUNT_RATE") // the default: a failed login's key lives 10s
	delete(env, "LOGIN_ACCOUNT_BURST")
	e := startE2EOn(t, redistest.Start(t), env)
	c := apiClient(t)
	usedBefore := usedMemory(t, e.redis)
	const budget = 256 << 10 // SESSION_DATA_MAX_BYTES's default; the 413 below names it

	ua := strings.Repeat("x", 1000) // stored cut to 256 bytes
	var tokens []string
	for range maxSessions + 5 {
		h := callUA(c, e.url, http.MethodPost, "/api/login", "", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password), ua)
		var out struct{ Token string }
		if h.status != http.StatusOK || json.Unmarshal([]byte(h.body), &out) != nil {
			t.Fatalf("login: %v", h)
		}
		tokens = append(tokens, out.Token)
	}
	var live []string
	for i, ok := range liveOn(t, c, e, tokens) {
		if ok {
			live = append(live, tokens[i])
		}
	}
	if len(live) != maxSessions {
		t.Fatalf("%d of %d logins live, want %d", len(live), len(tokens), maxSessions)
	}

	// K keys of 5 bytes and values of budget/K - 5 bytes: exactly the
	// budget, and each value's allocation (4091 + 6 bytes) lands just past
	// jemalloc's 4096 class, in the 5120 one.
	keyLen := 5
	valueLen := budget/profile.MaxDataKeys - keyLen
	value := strings.Repeat("v", valueLen)
	maxValue := strings.Repeat("m", profile.MaxDataValueBytes)
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(live)) // room for every error of every session
	for _, tok := range live {
		wg.Go(func() {
			put := func(key, v string) hit { return call(c, e.url, http.MethodPut, "/api/session/data/"+key, tok, v) }
			for i := range profile.MaxDataKeys {
				if h := put(fmt.Sprintf("k%04d", i), value); h.status != http.StatusNoContent {
					errs <- fmt.Sprintf("PUT %d: %v", i, h)
					return
				}
			}
			// Full: one more byte is refused, as are the largest values
			// the per-value limit allows, and one more key.
			if h := put("k0000", value+"v"); h.status != http.StatusRequestEntityTooLarge || !strings.Contains(h.body, fmt.Sprintf("would exceed %d bytes", budget)) {
				errs <- fmt.Sprintf("one byte over the budget: %v, want 413 naming the budget", h)
			}
			for i := range 4 {
				if h := put(fmt.Sprintf("k%04d", i), maxValue); h.status != http.StatusRequestEntityTooLarge || !isErrorJSON(h.body) {
					errs <- fmt.Sprintf("a 64 KiB value over the budget: %v, want 413", h)
				}
			}
			if h := put("extra", ""); h.status != http.StatusConflict || !isErrorJSON(h.body) {
				errs <- fmt.Sprintf("a key beyond %d: %v, want 409", profile.MaxDataKeys, h)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A wrong password spends some of the account's login budget (the
	// default one here): one more key of the account's, for about ten
	// seconds, measured if it is still there.
	if h := call(c, e.url, http.MethodPost, "/api/login", "", fmt.Sprintf(`{"email":%q,"password":"wrong"}`, email)); h.status != http.StatusUnauthorized {
		t.Fatalf("a wrong password: %v, want 401", h)
	}
	m := measureUser(t, e.redis, uid.String(), "pc:rl:{e:"+accountKey(email)+"}")
	bound := sessionBound(maxSessions, budget)
	sessions := m.tokens + m.data + m.index
	t.Logf("MEMORY USAGE of the user: %d keys, %d bytes: tokens %d (%d keys), data %d (%d keys), index %d, profile %d (%d keys), lock/fence/throttle %d (%d keys)",
		m.keys, m.total(), m.tokens, m.tokenKeys, m.data, m.dataKeys, m.index, m.profile, m.profileKeys, m.small, m.smallKeys)
	t.Logf("sessions part %d bytes, bound %d bytes (%.3f of it); all keys %d of %d (bound + C + profile)",
		sessions, bound, float64(sessions)/float64(bound), m.total(), bound+boundSmall+m.profile)
	// For reference only (it includes the keyspace and expiry tables, and
	// whatever else the server allocated meanwhile): used_memory's growth.
	t.Logf("used_memory grew by %d bytes", usedMemory(t, e.redis)-usedBefore)
	if m.tokenKeys != maxSessions || m.dataKeys != maxSessions {
		t.Errorf("%d token hashes and %d data hashes, want %d each", m.tokenKeys, m.dataKeys, maxSessions)
	}
	if sessions > bound {
		t.Errorf("the user's session keys take %d bytes, over the documented bound of %d", sessions, bound)
	}
	if 2*sessions < bound {
		t.Errorf("the hostile client reached only %d of the %d bytes bound: the test no longer drives the worst case", sessions, bound)
	}
	if m.small > boundSmall {
		t.Errorf("lock, fence and throttle keys take %d bytes, over %d", m.small, boundSmall)
	}
	if m.total() > bound+boundSmall+m.profile {
		t.Errorf("all of the user's keys take %d bytes, over bound %d + %d + profile %d", m.total(), bound, boundSmall, m.profile)
	}
}

// callUA is call with a User-Agent.
func callUA(c *http.Client, base, method, path, token, body, ua string) hit {
	h := hit{method: method, path: path, start: time.Now()}
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		h.err = err
		return h
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", ua)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		h.err = err
		return h
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	h.status, h.body, h.end = resp.StatusCode, string(b), time.Now()
	return h
}

// userMemory is MEMORY USAGE (SAMPLES 0: every element) summed over the
// user's keys, by kind.
type userMemory struct {
	keys                                        int
	tokens, data, index, profile, small         int
	tokenKeys, dataKeys, profileKeys, smallKeys int
}

func (m userMemory) total() int { return m.tokens + m.data + m.index + m.profile + m.small }

// measureUser SCANs every node for the user's keys, as an operator would,
// and sums their MEMORY USAGE, with the extra keys that exist.
func measureUser(t *testing.T, client rueidis.Client, uid string, extra ...string) userMemory {
	t.Helper()
	ctx := context.Background()
	prefix := "pc:{u:" + uid + "}:"
	var m userMemory
	usage := func(node rueidis.Client, k string) int {
		n, err := node.Do(ctx, node.B().MemoryUsage().Key(k).Samples(0).Build()).AsInt64()
		if err != nil && !rueidis.IsRedisNil(err) {
			t.Fatalf("MEMORY USAGE %s: %v", k, err)
		}
		return int(n)
	}
	for _, k := range extra {
		if n := usage(client, k); n > 0 {
			m.keys++
			m.small += n
			m.smallKeys++
		}
	}
	for addr, node := range client.Nodes() {
		for cursor := uint64(0); ; {
			entry, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				t.Fatalf("SCAN on %s: %v", addr, err)
			}
			for _, k := range entry.Elements {
				n := usage(node, k)
				m.keys++
				switch rest := strings.TrimPrefix(k, prefix); {
				case rest == "sessions":
					m.index += n
				case strings.HasPrefix(rest, "s:") && strings.HasSuffix(rest, ":data"):
					m.data += n
					m.dataKeys++
				case strings.HasPrefix(rest, "s:"):
					m.tokens += n
					m.tokenKeys++
				case rest == "lock" || rest == "fence":
					m.small += n
					m.smallKeys++
				default:
					m.profile += n
					m.profileKeys++
				}
			}
			if cursor = entry.Cursor; cursor == 0 {
				break
			}
		}
	}
	return m
}

// accountKey is the account's login throttle budget (web/throttle.go's
// accountKey, written out: the test names the key independently).
func accountKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:16])
}

// usedMemory is INFO memory's used_memory of a single server.
func usedMemory(t *testing.T, client rueidis.Client) int {
	t.Helper()
	info, err := client.Do(context.Background(), client.B().Info().Section("memory").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("used_memory %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no used_memory in INFO memory:\n%s", info)
	return 0
}
