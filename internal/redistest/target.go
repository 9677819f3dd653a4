package redistest

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// Target is a Redis that storage tests run against: a single server
// (*Server) or a Redis Cluster (*Cluster). One suite, two targets.
type Target interface {
	// Name is "single", "external" or "cluster", for subtest names.
	Name() string
	// Mode is the mode a rueidis client of this target reports.
	Mode() rueidis.ClientMode
	// URL is a REDIS_URL for the target.
	URL() string
	// Client returns a new client (its own connections and client-side
	// cache), closed when tb ends; options adjust the defaults.
	Client(tb testing.TB, opts ...func(*rueidis.ClientOption)) rueidis.Client
}

var (
	_ Target = (*Server)(nil)
	_ Target = (*Cluster)(nil)
)

// Targets runs fn as two subtests: "single" on a fresh server of its own
// (Start) and "cluster" on the binary's shared, flushed cluster
// (SharedCluster; the package's TestMain must call RunTests).
func Targets(t *testing.T, fn func(t *testing.T, target Target)) {
	t.Helper()
	t.Run("single", func(t *testing.T) { fn(t, Start(t)) })
	t.Run("cluster", func(t *testing.T) { fn(t, SharedCluster(t)) })
}

// Name implements Target.
func (s *Server) Name() string {
	if s.url != "" {
		return "external"
	}
	return "single"
}

// Mode implements Target. An external server is taken to be standalone.
func (s *Server) Mode() rueidis.ClientMode { return rueidis.ClientModeStandalone }

// URL implements Target.
func (s *Server) URL() string {
	if s.url != "" {
		return s.url
	}
	return "redis://" + s.Addr
}

// Keys returns every key matching pattern on every node client knows: on a
// cluster, KEYS sent through the client would reach one random node only.
// For tests that inspect what Redis holds; sorted.
func Keys(tb testing.TB, client rueidis.Client, pattern string) []string {
	tb.Helper()
	var keys []string
	for addr, node := range client.Nodes() {
		ks, err := node.Do(context.Background(), node.B().Keys().Pattern(pattern).Build()).AsStrSlice()
		if err != nil {
			tb.Fatalf("redistest: KEYS %s on %s: %v", pattern, addr, err)
		}
		keys = append(keys, ks...)
	}
	slices.Sort(keys)
	return keys
}

// Command sends one raw command to the server on a connection of its own
// (no client, no cache) and returns a simple, bulk or integer reply.
func (s *Server) Command(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := command(s.Addr, args...)
	if err != nil {
		tb.Fatalf("redistest: %v on %s: %v", args, s.Addr, err)
	}
	return out
}

// ReplicaOf makes s a read-only replica of primary and waits until it has
// synced: from then on s serves reads of primary's data and refuses writes
// (READONLY), as a replica left alone after losing its master does.
func (s *Server) ReplicaOf(tb testing.TB, primary *Server) {
	tb.Helper()
	host, port, err := net.SplitHostPort(primary.Addr)
	if err != nil {
		tb.Fatal(err)
	}
	// The primary otherwise waits 5 s for more replicas before a diskless sync.
	primary.Command(tb, "CONFIG", "SET", "repl-diskless-sync-delay", "0")
	s.Command(tb, "REPLICAOF", host, port)
	_, myPort, err := net.SplitHostPort(s.Addr)
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		info := s.Command(tb, "INFO", "replication")
		// The primary too: it counts a replica as online (in ROLE, for
		// WAIT's callers) only once the replica's first ACK is in, a
		// moment after the replica says its link is up.
		if hasLine(info, "master_link_status:up") && replicaOnline(primary.Command(tb, "INFO", "replication"), myPort) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: %s not in sync with %s within %v:\n%s", s.Addr, primary.Addr, readyTimeout, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// replicaOnline reports whether a master's INFO replication lists the
// replica listening on port as online.
func replicaOnline(info, port string) bool {
	for line := range strings.SplitSeq(info, "\n") {
		// slave0:ip=127.0.0.1,port=6380,state=online,offset=123,lag=0
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.HasPrefix(k, "slave") &&
			field(v, "port") == port && field(v, "state") == "online" {
			return true
		}
	}
	return false
}
