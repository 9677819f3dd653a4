package redisrepo_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// env is one test's Redis: a client for the store under test (caching on)
// and a plain uncached client to check what Redis really holds.
type env struct {
	srv    redistest.Target
	client rueidis.Client
	raw    rueidis.Client
}

// onTargets runs test on a single redis-server and on a Redis Cluster: one
// suite, two targets. On the cluster rueidis refuses (panics on) any
// command whose keys span slots, so a green cluster run proves the store
// never mixes users' keys, or a user's keys with a foreign slot.
func onTargets(t *testing.T, test func(t *testing.T, e env)) {
	t.Helper()
	redistest.Targets(t, func(t *testing.T, target redistest.Target) {
		test(t, newEnvOn(t, target))
	})
}

// newEnv is a fresh single server, for benchmarks.
func newEnv(t testing.TB) env {
	t.Helper()
	return newEnvOn(t, redistest.Start(t))
}

func newEnvOn(t testing.TB, target redistest.Target) env {
	t.Helper()
	e := env{
		srv:    target,
		client: target.Client(t),
		raw:    target.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true }),
	}
	if got, want := e.client.Mode(), target.Mode(); got != want {
		t.Fatalf("client mode = %s, want %s", got, want)
	}
	return e
}

// do runs a raw command, given as words, and fails the test on error
// (a nil reply is not an error). The second word is the key (the third
// for OBJECT), which routes the command to its node on a cluster.
func (e env) do(t testing.TB, words ...string) rueidis.RedisResult {
	t.Helper()
	cmd := e.raw.B().Arbitrary(words[0])
	switch {
	case strings.EqualFold(words[0], "OBJECT") && len(words) > 2:
		cmd = e.raw.B().Arbitrary(words[0], words[1]).Keys(words[2]).Args(words[3:]...)
	case len(words) > 1:
		cmd = cmd.Keys(words[1]).Args(words[2:]...)
	}
	r := e.raw.Do(context.Background(), cmd.Build())
	if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
		t.Fatalf("%s: %v", strings.Join(words, " "), err)
	}
	return r
}

func (e env) str(t testing.TB, words ...string) string {
	t.Helper()
	s, err := e.do(t, words...).ToString()
	if err != nil && !rueidis.IsRedisNil(err) {
		t.Fatalf("%s: %v", strings.Join(words, " "), err)
	}
	return s
}

func (e env) int(t testing.TB, words ...string) int64 {
	t.Helper()
	n, err := e.do(t, words...).AsInt64()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(words, " "), err)
	}
	return n
}

func (e env) strMap(t testing.TB, words ...string) map[string]string {
	t.Helper()
	m, err := e.do(t, words...).AsStrMap()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(words, " "), err)
	}
	return m
}

func (e env) strs(t testing.TB, words ...string) []string {
	t.Helper()
	s, err := e.do(t, words...).AsStrSlice()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(words, " "), err)
	}
	return s
}

// userKeys lists every key of the user with SCAN MATCH, the way an
// operator would look: on every node, since a cluster spreads the users.
func (e env) userKeys(t testing.TB, uid uuid.UUID) []string {
	t.Helper()
	var keys []string
	for addr, node := range e.raw.Nodes() {
		cursor := uint64(0)
		for {
			entry, err := node.Do(context.Background(), node.B().Scan().Cursor(cursor).
				Match("pc:{u:"+uid.String()+"}:*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				t.Fatalf("SCAN on %s: %v", addr, err)
			}
			keys = append(keys, entry.Elements...)
			if cursor = entry.Cursor; cursor == 0 {
				break
			}
		}
	}
	return keys
}

// key builds a key of the documented layout, independently of the code
// under test.
func key(uid uuid.UUID, parts ...string) string {
	return "pc:{u:" + uid.String() + "}:" + strings.Join(parts, ":")
}

// gen returns the user's current generation as meta says.
func (e env) gen(t testing.TB, uid uuid.UUID) string {
	t.Helper()
	return e.str(t, "HGET", key(uid, "meta"), "gen")
}

// eventually polls cond for up to a second: invalidation is asynchronous.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 1s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var t0 = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

// richProfile is alice-like: every section filled, text with non-ASCII
// characters. tag makes every value of one version distinct from another's.
func richProfile(uid uuid.UUID, tag string, orders, invoices, inquiries int) *profile.Profile {
	p := &profile.Profile{
		Basic: profile.Basic{
			ID:                  uid,
			FirstName:           "Zoë " + tag,
			LastName:            "Ångström " + tag,
			Email:               "zoe." + tag + "@example.com",
			Phone:               "+46 8 123 " + tag,
			AddressLine:         "Drottninggatan 1 " + tag + " 🏠",
			PostalCode:          "111 51",
			City:                "東京 " + tag,
			Country:             "SE",
			MarketingPermission: true,
			Created:             t0.Add(-400 * 24 * time.Hour),
		},
		Interests: []string{"ski " + tag, "jazz " + tag, "ramen 🍜 " + tag, "Øl " + tag},
	}
	for i := range orders {
		p.Orders = append(p.Orders, profile.Order{
			ID:           fmt.Sprintf("%s-o%05d", tag, i),
			Number:       fmt.Sprintf("ORD-%s-%d", tag, i),
			Date:         t0.Add(-time.Duration(i) * time.Hour),
			Status:       "shipped " + tag,
			Total:        profile.Money(1999 + i),
			Currency:     "EUR",
			ItemCount:    1 + i%5,
			ShippingCity: "Malmö " + tag,
		})
	}
	for i := range invoices {
		p.Invoices = append(p.Invoices, profile.Invoice{
			ID:       fmt.Sprintf("%s-i%04d", tag, i),
			Number:   "INV-" + tag + "-" + strconv.Itoa(i),
			Date:     t0.Add(-time.Duration(i) * 24 * time.Hour),
			Amount:   profile.Money(5000 + i),
			Currency: "SEK",
			Paid:     i%2 == 0,
		})
	}
	for i := range inquiries {
		p.Inquiries = append(p.Inquiries, profile.Inquiry{
			ID:             fmt.Sprintf("%s-q%03d", tag, i),
			Closed:         i%2 == 1,
			Description:    "Paket kom inte fram 📦 — «" + tag + "»",
			Submitted:      t0.Add(-time.Duration(i) * 48 * time.Hour),
			SubmitterEmail: "zoe." + tag + "@example.com",
			SubmitterName:  "Zoë Ångström",
		})
	}
	return p
}

// alice has a bit of everything: 25 orders, 6 invoices, 3 inquiries, 4 interests.
func alice(uid uuid.UUID) *profile.Profile { return richProfile(uid, "A", 25, 6, 3) }

// bob has basic data only.
func bob(uid uuid.UUID) *profile.Profile {
	return &profile.Profile{Basic: profile.Basic{ID: uid, FirstName: "Bob", LastName: "Empty", Email: "bob@example.com",
		Country: "DE", Created: t0}}
}

// carol is the big one: n orders.
func carol(uid uuid.UUID, n int) *profile.Profile { return richProfile(uid, "C", n, 120, 40) }

func page(offset, limit int) *profile.Page { return &profile.Page{Offset: offset, Limit: limit} }

// everything asks for every part with pages that fit alice.
var everything = profile.Query{Basic: true, Interests: true,
	Orders: page(0, 100), Invoices: page(0, 100), Inquiries: page(0, 100)}

func newProfileStore(c rueidis.Client, opts redisrepo.ProfileOptions) *redisrepo.ProfileStore {
	return redisrepo.NewProfileStore(c, opts)
}

func mustSave(t testing.TB, s *redisrepo.ProfileStore, p *profile.Profile) {
	t.Helper()
	if err := s.Save(context.Background(), p, ""); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

func sortStrings(ss []string) { slices.Sort(ss) }

// logRecorder is a slog.Handler that keeps warnings and errors for asserts.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler           { return r }
func (r *logRecorder) WithGroup(string) slog.Handler                { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	r.msgs = append(r.msgs, msg)
	return nil
}

func (r *logRecorder) warnings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}
