package redisrepo_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// tripCounter notes the round trips a client makes, with every command
// of each: each Do and each DoMulti is one; cached reads count only when
// they miss.
type tripCounter struct {
	rueidis.Client
	mu    sync.Mutex
	trips []trip
}

// trip is one round trip: its commands, as words.
type trip [][]string

func (c *tripCounter) note(t trip) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trips = append(c.trips, t)
}

// Commands are read before the call: rueidis recycles a command once sent.

func (c *tripCounter) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.note(trip{slices.Clone(cmd.Commands())})
	return c.Client.Do(ctx, cmd)
}

func (c *tripCounter) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	t := make(trip, len(cmds))
	for i, cmd := range cmds {
		t[i] = slices.Clone(cmd.Commands())
	}
	c.note(t)
	return c.Client.DoMulti(ctx, cmds...)
}

func (c *tripCounter) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	words := slices.Clone(cmd.Commands())
	r := c.Client.DoCache(ctx, cmd, ttl)
	if !r.IsCacheHit() {
		c.note(trip{words})
	}
	return r
}

func (c *tripCounter) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	words := make(trip, len(multi))
	for i, m := range multi {
		words[i] = slices.Clone(m.Cmd.Commands())
	}
	rs := c.Client.DoMultiCache(ctx, multi...)
	var missed trip
	for i, r := range rs {
		if !r.IsCacheHit() {
			missed = append(missed, words[i])
		}
	}
	if len(missed) > 0 { // one pipelined batch for all the misses
		c.note(missed)
	}
	return rs
}

func (c *tripCounter) take() []trip {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.trips
	c.trips = nil
	return t
}

// A save is a few round trips per batchful of keys, each of them bounded
// whatever the size of the profile (issue 11): ceil(writes/BatchKeys)
// write batches and one switch, then, when it replaced a generation, the
// bounded walk that deletes it. And a hot read makes none.
func TestWritesAndHotReadsRoundTrips(t *testing.T) { onTargets(t, testWritesAndHotReadsRoundTrips) }

func testWritesAndHotReadsRoundTrips(t *testing.T, e env) {
	c := &tripCounter{Client: e.client}
	s := newProfileStore(c, redisrepo.ProfileOptions{})
	ctx := context.Background()
	uid := uuid.New()
	p := carol(uid, 2000)
	// Load the scripts on the user's node first (the first call of a
	// script is an EVALSHA that fails, then an EVAL).
	mustSave(t, s, p)
	if err := s.Delete(ctx, uid); err != nil {
		t.Fatal(err)
	}
	c.take()

	wantWrites := writesOf(p)
	for i, what := range []string{"first save", "replace"} {
		if err := s.Save(ctx, p, ""); err != nil {
			t.Fatal(err)
		}
		trips := c.take()
		checkBounded(t, what, trips)
		var batches, switches, other, writes, vals int
		for _, tr := range trips {
			switch scriptKeys(tr[0]) {
			case "write":
				batches++
				for _, w := range batchWrites(tr[0]) {
					writes++
					vals += w.n
				}
			case "switch":
				switches++
			default:
				other++
			}
		}
		// Each batch is full but the last, in keys or in values: the
		// batches are as few as the bounds allow, give or take.
		least := max(ceilDiv(writes, redisrepo.BatchKeys), ceilDiv(vals, redisrepo.BatchVals))
		most := ceilDiv(writes, redisrepo.BatchKeys) + ceilDiv(vals, redisrepo.BatchVals)
		if writes != wantWrites || batches < least || batches > most || switches != 1 {
			t.Errorf("%s: %d writes (%d values) in %d batches, %d switches; want %d writes in %d..%d batches, 1 switch",
				what, writes, vals, batches, switches, wantWrites, least, most)
		}
		// A first save is nothing but the batches and the switch; a
		// replace also walks the old generation: at most an LRANGE and an
		// UNLINK per chunk of ids, one more LRANGE per list, one UNLINK
		// for the lists themselves.
		if i == 0 && other != 0 {
			t.Errorf("%s: %d more round trips (%v), want none", what, other, firsts(trips))
		}
		if walk := walkTrips(p); i == 1 && (other == 0 || other > walk) {
			t.Errorf("%s: %d more round trips (%v), want 1..%d", what, other, firsts(trips), walk)
		}
	}

	q := profile.Query{Basic: true, Interests: true, Orders: &profile.Page{Offset: 1000, Limit: 20}}
	for range 2 { // warm the client-side cache
		if _, err := s.Read(ctx, uid, q); err != nil {
			t.Fatal(err)
		}
	}
	c.take()
	if _, err := s.Read(ctx, uid, q); err != nil {
		t.Fatal(err)
	}
	if trips := c.take(); len(trips) != 0 {
		t.Errorf("a hot Read made %d round trips (%v), want 0", len(trips), firsts(trips))
	}

	// Create is one Lua call (the cap and the fence are checked inside);
	// the first call on a server also loads the script (EVAL).
	ts := redisrepo.NewTokenStore(c, redisrepo.TokenOptions{})
	for _, id := range []string{"s0", "s1"} {
		if err := ts.Create(ctx, profile.Session{ID: id, UserID: uid}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if trips := c.take(); id == "s1" && (len(trips) != 1 || trips[0][0][0] != "EVALSHA") {
			t.Errorf("Create made %d round trips (%v), want 1 EVALSHA", len(trips), firsts(trips))
		}
	}
	for range 2 {
		if _, err := ts.Lookup(ctx, uid, "s1"); err != nil {
			t.Fatal(err)
		}
	}
	c.take()
	if _, err := ts.Lookup(ctx, uid, "s1"); err != nil {
		t.Fatal(err)
	}
	if trips := c.take(); len(trips) != 0 {
		t.Errorf("a hot Lookup made %d round trips (%v), want 0", len(trips), firsts(trips))
	}
}

func firsts(trips []trip) []string {
	out := make([]string, len(trips))
	for i, t := range trips {
		out[i] = t[0][0]
		if len(t) > 1 {
			out[i] += fmt.Sprintf("×%d", len(t))
		}
	}
	return out
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// writesOf is how many writes a save of p makes: one per hash, and one per
// ChunkElems elements of a list or set.
func writesOf(p *profile.Profile) int {
	chunks := func(n int) int { return ceilDiv(n, redisrepo.ChunkElems) }
	writes := 1 + chunks(len(uniqSorted(p.Interests)))
	for _, n := range []int{len(p.Orders), len(p.Invoices), len(p.Inquiries)} {
		writes += n + chunks(n)
	}
	return writes
}

// write is one key of a write batch: its kind and its number of values.
type write struct {
	kind string
	n    int
}

// batchWrites parses a write batch: EVALSHA sha numkeys fence keys...
// expected-fence ttl, then per key: kind, n, n values.
func batchWrites(cmd []string) []write {
	keys := evalKeys(cmd)
	args := cmd[3+len(keys)+2:]
	var out []write
	for i := 0; i+1 < len(args); {
		n, err := strconv.Atoi(args[i+1])
		if err != nil {
			return append(out, write{kind: "unparsable " + args[i+1], n: math.MaxInt})
		}
		out = append(out, write{kind: args[i], n: n})
		i += 2 + n
	}
	return out
}

// writeBatches is how many write batches a save of p takes at least.
func writeBatches(p *profile.Profile) int { return ceilDiv(writesOf(p), redisrepo.BatchKeys) }

// walkTrips bounds the round trips of deleting or renewing p's generation.
func walkTrips(p *profile.Profile) int {
	n := 1
	for _, k := range []int{len(p.Orders), len(p.Invoices), len(p.Inquiries)} {
		n += 2*((k+redisrepo.ChunkElems-1)/redisrepo.ChunkElems) + 1
	}
	return n
}

// scriptKeys tells the profile write scripts apart by their keys: a write
// batch's first key is the fence, the switch's keys are meta and fence.
func scriptKeys(cmd []string) string {
	keys := evalKeys(cmd)
	switch {
	case len(keys) == 2 && strings.HasSuffix(keys[0], "}:meta") && strings.HasSuffix(keys[1], "}:fence"):
		return "switch"
	case len(keys) >= 2 && strings.HasSuffix(keys[0], "}:fence"):
		return "write"
	}
	return ""
}

// evalKeys returns the keys of an EVAL or EVALSHA, nil for other commands.
func evalKeys(cmd []string) []string {
	switch strings.ToUpper(cmd[0]) {
	case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO":
		n, err := strconv.Atoi(cmd[2])
		if err != nil || 3+n > len(cmd) {
			return nil
		}
		return cmd[3 : 3+n]
	}
	return nil
}

// maxTrip bounds the commands of one round trip: the largest is a read of
// a full page of each section, one HMGET per item, and a few more. Redis
// runs pipelined commands one by one, others' in between, so this bounds
// the client's work more than Redis's.
const maxTrip = 3*profile.MaxLimit + 8

// checkBounded fails the test for any round trip that could keep Redis
// busy in proportion to a profile's size: more than maxTrip commands, a
// command or script on more than BatchKeys keys (+1, the fence of a write
// batch), an RPUSH, SADD or LRANGE of more than ChunkElems elements, or a
// write batch of more than BatchVals values or adding more than ChunkElems
// elements to one list or set.
// Scripts are held to their keys: each one's body is O(1) or O(its keys).
func checkBounded(t *testing.T, what string, trips []trip) {
	t.Helper()
	for _, tr := range trips {
		if len(tr) > maxTrip {
			t.Errorf("%s: one round trip of %d commands (%s …), want at most %d", what, len(tr), tr[0][0], maxTrip)
		}
		for _, cmd := range tr {
			if n, limit := cmdSize(cmd); n > limit {
				t.Errorf("%s: %s on %d keys or elements, want at most %d", what, cmd[0], n, limit)
			}
			if scriptKeys(cmd) != "write" {
				continue
			}
			vals := 0
			for _, w := range batchWrites(cmd) {
				vals += w.n
				if w.kind != "h" && w.n > redisrepo.ChunkElems {
					t.Errorf("%s: a write batch adds %d elements to one list or set, want at most %d", what, w.n, redisrepo.ChunkElems)
				}
			}
			if vals > redisrepo.BatchVals {
				t.Errorf("%s: a write batch of %d values, want at most %d", what, vals, redisrepo.BatchVals)
			}
		}
	}
}

// cmdSize is how many keys or elements cmd carries, and the most allowed.
func cmdSize(cmd []string) (n, limit int) {
	switch name := strings.ToUpper(cmd[0]); name {
	case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO":
		return len(evalKeys(cmd)), redisrepo.BatchKeys + 1
	case "UNLINK", "DEL", "EXISTS", "MGET":
		return len(cmd) - 1, redisrepo.BatchKeys
	case "RPUSH", "LPUSH", "SADD":
		return len(cmd) - 2, redisrepo.ChunkElems
	case "LRANGE":
		start, err1 := strconv.Atoi(cmd[2])
		stop, err2 := strconv.Atoi(cmd[3])
		if err1 != nil || err2 != nil || start < 0 || stop < 0 {
			return math.MaxInt, redisrepo.ChunkElems // to the end of the list
		}
		return stop - start + 1, redisrepo.ChunkElems
	}
	return 1, 1
}
