package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// clusterMasters is the size of a test cluster: three masters, the
// smallest cluster redis-cli agrees to create, no replicas.
const clusterMasters = 3

// clusterReadyTimeout bounds cluster creation plus the wait until every
// node says cluster_state:ok.
const clusterReadyTimeout = 30 * time.Second

// Cluster is a real Redis Cluster on loopback: three redis-server processes
// in cluster mode, each master of a third of the slots.
type Cluster struct {
	nodes    []*Server
	masters  int // how many of nodes were created masters (the first ones)
	replicas int // replicas per master
}

// StartCluster starts a cluster of its own for tb and stops it when tb
// ends. It takes a second or two; tests that only need "a cluster" should
// use SharedCluster.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := startCluster(tb, tb.TempDir(), clusterSpec{replicas: 0, nodeTimeout: 5 * time.Second})
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			c.dumpLogs(tb, maxLogDump)
		}
		c.stop()
	})
	return c
}

// shared is the one cluster of a test binary (see SharedCluster).
var shared struct {
	running atomic.Bool // RunTests is active
	once    sync.Once
	dir     string
	c       *Cluster
	err     error
}

// RunTests runs m and then stops the cluster SharedCluster started, if any.
// A package whose tests use SharedCluster or Targets calls it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }
func RunTests(m *testing.M) int {
	shared.running.Store(true)
	defer func() {
		if shared.c != nil {
			shared.c.stop()
		}
		if shared.dir != "" {
			os.RemoveAll(shared.dir)
		}
	}()
	return m.Run()
}

// SharedCluster returns the test binary's cluster, started on first use
// and flushed (FLUSHALL on every master) for each caller, so tests that
// run one after another see an empty cluster. Tests using it must not run
// in parallel with each other. The package's TestMain must call RunTests,
// which stops the cluster at the end.
func SharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	if !shared.running.Load() {
		tb.Fatal("redistest: SharedCluster needs the package's TestMain to call redistest.RunTests, which stops the cluster")
	}
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "redistest-cluster-"); shared.err != nil {
			return
		}
		shared.c, shared.err = startCluster(tb, shared.dir, clusterSpec{replicas: 0, nodeTimeout: 5 * time.Second})
	})
	if shared.err != nil {
		tb.Fatalf("redistest: shared cluster: %v", shared.err)
	}
	c := shared.c
	if err := c.flush(); err != nil {
		c.dumpLogs(tb, 16<<10)
		tb.Fatalf("redistest: flush the shared cluster: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			c.dumpLogs(tb, 16<<10)
		}
	})
	return c
}

// clusterSpec is the shape of a cluster to start.
type clusterSpec struct {
	replicas    int           // per master
	nodeTimeout time.Duration // cluster-node-timeout
	extra       []string      // more redis-server arguments
}

func startCluster(tb testing.TB, dir string, spec clusterSpec) (*Cluster, error) {
	tb.Helper()
	cli := lookPath(tb, "redis-cli")
	c := &Cluster{masters: clusterMasters, replicas: spec.replicas}
	fail := func(err error) (*Cluster, error) {
		c.dumpLogs(tb, maxLogDump)
		c.stop()
		return nil, err
	}
	for i := range clusterMasters * (1 + spec.replicas) {
		nodeDir := filepath.Join(dir, "node"+strconv.Itoa(i))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return fail(err)
		}
		s, err := launch(tb, nodeDir, func(int) ([]string, error) {
			// The cluster bus port defaults to port+10000, which may be
			// taken or beyond 65535: pick a free one (Redis 7 allows it).
			bus, err := freePort()
			if err != nil {
				return nil, err
			}
			return append([]string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-port", strconv.Itoa(bus),
				"--cluster-node-timeout", strconv.FormatInt(spec.nodeTimeout.Milliseconds(), 10),
				// A replica's full sync starts at once, not after the
				// default 5 s wait for more replicas.
				"--repl-diskless-sync-delay", "0",
			}, spec.extra...), nil
		})
		if err != nil {
			return fail(fmt.Errorf("start cluster node %d: %w", i, err))
		}
		c.nodes = append(c.nodes, s)
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(spec.replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("redis-cli %s: %w\n%s", strings.Join(args, " "), err, out))
	}
	if err := c.waitOK(ctx); err != nil {
		return fail(err)
	}
	return c, nil
}

// waitOK waits until every running node reports cluster_state:ok and
// knows every node: only then do all of them agree on the slot map that
// clients fetch.
func (c *Cluster) waitOK(ctx context.Context) error {
	want := []string{"cluster_state:ok", "cluster_slots_ok:16384", "cluster_known_nodes:" + strconv.Itoa(len(c.nodes))}
	for {
		var last string
		ready := true
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			info, err := command(n.Addr, "CLUSTER", "INFO")
			if err != nil {
				last, ready = err.Error(), false
				break
			}
			for _, w := range want {
				if !hasLine(info, w) {
					last, ready = n.Addr+": "+strings.ReplaceAll(info, "\r\n", " "), false
					break
				}
			}
			if !ready {
				break
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ok: %w; last CLUSTER INFO: %s", ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func hasLine(s, line string) bool {
	for l := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// flush empties every master. Raw commands, no client: nothing to cache.
func (c *Cluster) flush() error {
	for _, n := range c.nodes {
		if out, err := command(n.Addr, "FLUSHALL"); err != nil {
			return fmt.Errorf("FLUSHALL on %s: %w", n.Addr, err)
		} else if out != "OK" {
			return fmt.Errorf("FLUSHALL on %s answered %q", n.Addr, out)
		}
	}
	return nil
}

func (c *Cluster) stop() {
	for _, n := range c.nodes {
		n.stop()
	}
}

func (c *Cluster) dumpLogs(tb testing.TB, max int) {
	for _, n := range c.nodes {
		n.dumpLogTail(tb, max)
	}
}

// Addrs lists the nodes' host:port in the order they were started: on a
// cluster without replicas, the masters.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr
	}
	return out
}

// Name implements Target.
func (c *Cluster) Name() string { return "cluster" }

// Mode implements Target.
func (c *Cluster) Mode() rueidis.ClientMode { return rueidis.ClientModeCluster }

// URL is a REDIS_URL naming every node as a seed, as rueidis.ParseURL
// reads it: redis://a?addr=b&addr=c.
func (c *Cluster) URL() string {
	addrs := c.Addrs()
	u := "redis://" + addrs[0]
	for i, a := range addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + a
	}
	return u
}

// Client returns a new cluster client, closed when tb ends. It fails tb
// unless rueidis really runs in cluster mode, where it refuses cross-slot
// commands: a green test on a cluster then proves there are none.
func (c *Cluster) Client(tb testing.TB, opts ...func(*rueidis.ClientOption)) rueidis.Client {
	tb.Helper()
	opt := rueidis.ClientOption{InitAddress: c.Addrs()}
	for _, f := range opts {
		f(&opt)
	}
	cl, err := rueidis.NewClient(opt)
	if err != nil {
		tb.Fatalf("redistest: connect to cluster %v: %v", opt.InitAddress, err)
	}
	tb.Cleanup(cl.Close)
	if got := cl.Mode(); got != rueidis.ClientModeCluster {
		tb.Fatalf("redistest: client mode = %s, want %s", got, rueidis.ClientModeCluster)
	}
	return cl
}
