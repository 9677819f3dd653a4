package redistest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/redisproc"
)

// failoverWait is a sanity bound on the waits of a FailoverCluster (a
// failover, a rejoin): generous on a loaded -race run, it only keeps a
// broken cluster from hanging the test. It is not what tests measure.
const failoverWait = 90 * time.Second

// FailoverCluster is a Redis Cluster of three masters with one replica each
// on loopback, for failover tests: a node can be killed (SIGKILL) and
// started again on the same port with its nodes.conf, and the cluster says
// which node holds which slot. Every caller gets a cluster of its own,
// stopped when tb ends; never the shared one, which other tests keep using.
//
// Persistence is off on every node, as on the other test servers: a killed
// master that comes back after its replica was promoted rejoins as the new
// master's replica (its nodes.conf says which cluster it belongs to; the
// promoted replica's higher config epoch says who owns the slots now) and
// takes a full copy from it. One that came back BEFORE the failover would
// return empty as master of its slots; tests restart a node only after
// WaitFailover.
type FailoverCluster struct {
	*Cluster
	// NodeTimeout is the cluster-node-timeout: how long a master may be
	// silent before the others mark it failed and its replica takes over.
	NodeTimeout time.Duration

	mu     sync.Mutex
	paused map[string]bool
}

// StartFailoverCluster starts a cluster of six nodes, three masters with a
// replica each, whose cluster-node-timeout is nodeTimeout, and waits until
// every replica is in sync. extra are more redis-server arguments for every
// node, e.g. "--cluster-require-full-coverage", "no".
func StartFailoverCluster(tb testing.TB, nodeTimeout time.Duration, extra ...string) *FailoverCluster {
	tb.Helper()
	c, err := startCluster(tb, tb.TempDir(), clusterSpec{replicas: 1, nodeTimeout: nodeTimeout, extra: extra})
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	fc := &FailoverCluster{Cluster: c, NodeTimeout: nodeTimeout, paused: map[string]bool{}}
	tb.Cleanup(func() {
		if tb.Failed() {
			c.dumpLogs(tb, 16<<10)
		}
		c.stop()
	})
	fc.WaitHealthy(tb)
	return fc
}

// Name implements Target.
func (c *FailoverCluster) Name() string { return "failover-cluster" }

// NodeInfo is one node as CLUSTER NODES describes it.
type NodeInfo struct {
	ID   string
	Addr string // host:port
	// Master is true for a master, false for a replica; MasterID names a
	// replica's master.
	Master   bool
	MasterID string
	// Failed: the reporting node holds this one failed (fail or fail?).
	Failed bool
	// Slots are the ranges a master serves, first and last included.
	Slots [][2]int
}

// Owns reports whether n serves slot.
func (n NodeInfo) Owns(slot int) bool {
	return slices.ContainsFunc(n.Slots, func(r [2]int) bool { return r[0] <= slot && slot <= r[1] })
}

// Nodes is CLUSTER NODES as the node at addr sees the cluster, itself
// first.
func (c *FailoverCluster) Nodes(tb testing.TB, addr string) []NodeInfo {
	tb.Helper()
	nodes, err := clusterNodes(addr)
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	return nodes
}

func clusterNodes(addr string) ([]NodeInfo, error) {
	out, err := command(addr, "CLUSTER", "NODES")
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES on %s: %w", addr, err)
	}
	var nodes []NodeInfo
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		// <id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
		n := NodeInfo{ID: f[0], Addr: f[1], MasterID: f[3]}
		if i := strings.IndexAny(n.Addr, "@,"); i >= 0 {
			n.Addr = n.Addr[:i]
		}
		flags := strings.Split(f[2], ",")
		n.Master = slices.Contains(flags, "master")
		n.Failed = slices.Contains(flags, "fail") || slices.Contains(flags, "fail?")
		if n.MasterID == "-" {
			n.MasterID = ""
		}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") { // a slot being migrated
				continue
			}
			lo, hi, _ := strings.Cut(s, "-")
			a, err1 := strconv.Atoi(lo)
			b, err2 := a, error(nil)
			if hi != "" {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("CLUSTER NODES on %s: bad slot range %q", addr, s)
			}
			n.Slots = append(n.Slots, [2]int{a, b})
		}
		if slices.Contains(flags, "myself") {
			nodes = slices.Insert(nodes, 0, n)
		} else {
			nodes = append(nodes, n)
		}
	}
	return nodes, nil
}

// Running lists the addresses of the nodes that run: neither killed nor
// paused.
func (c *FailoverCluster) Running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.nodes {
		if n.running() && !c.paused[n.Addr] {
			out = append(out, n.Addr)
		}
	}
	return out
}

// KeySlot is the hash slot of key (CLUSTER KEYSLOT).
func (c *FailoverCluster) KeySlot(tb testing.TB, key string) int {
	tb.Helper()
	out, err := command(c.Running()[0], "CLUSTER", "KEYSLOT", key)
	if err != nil {
		tb.Fatalf("redistest: CLUSTER KEYSLOT %s: %v", key, err)
	}
	slot, err := strconv.Atoi(out)
	if err != nil {
		tb.Fatalf("redistest: CLUSTER KEYSLOT %s = %q", key, out)
	}
	return slot
}

// Master is the master that serves slot, as a running node sees it.
func (c *FailoverCluster) Master(tb testing.TB, slot int) NodeInfo {
	tb.Helper()
	for _, n := range c.Nodes(tb, c.Running()[0]) {
		if n.Master && n.Owns(slot) {
			return n
		}
	}
	tb.Fatalf("redistest: no master serves slot %d", slot)
	return NodeInfo{}
}

// Masters lists the masters that serve slots, as a running node sees them,
// in address order.
func (c *FailoverCluster) Masters(tb testing.TB) []NodeInfo {
	tb.Helper()
	var out []NodeInfo
	for _, n := range c.Nodes(tb, c.Running()[0]) {
		if n.Master && len(n.Slots) > 0 && !n.Failed {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}

func (c *FailoverCluster) server(tb testing.TB, addr string) *Server {
	tb.Helper()
	for _, n := range c.nodes {
		if n.Addr == addr {
			return n
		}
	}
	tb.Fatalf("redistest: no node %s in the cluster", addr)
	return nil
}

// Command sends one raw command to the node at addr (see Server.Command).
func (c *FailoverCluster) Command(tb testing.TB, addr string, args ...string) string {
	tb.Helper()
	return c.server(tb, addr).Command(tb, args...)
}

// Kill kills the node at addr with SIGKILL, as a crash would: no goodbye
// to the cluster, open connections reset, whatever its replica had not yet
// received is lost.
func (c *FailoverCluster) Kill(tb testing.TB, addr string) {
	tb.Helper()
	c.server(tb, addr).proc.Stop()
}

// ReplicaRead sends a read to the replica at addr, after READONLY on the
// same connection: without it a cluster replica redirects (MOVED) every
// key to its master.
func (c *FailoverCluster) ReplicaRead(tb testing.TB, addr string, args ...string) string {
	tb.Helper()
	out, err := redisproc.Pipeline(addr, []string{"READONLY"}, args)
	if err != nil {
		tb.Fatalf("redistest: READONLY; %v on %s: %v", args, addr, err)
	}
	return out[1]
}

// Pause freezes the node at addr (SIGSTOP, see Server.Pause): its
// connections stay open and it answers nothing, not even the cluster bus.
// Until Resume, it does not count as running.
func (c *FailoverCluster) Pause(tb testing.TB, addr string) {
	tb.Helper()
	c.server(tb, addr).Pause(tb)
	c.mu.Lock()
	c.paused[addr] = true
	c.mu.Unlock()
}

// Resume thaws a paused node.
func (c *FailoverCluster) Resume(tb testing.TB, addr string) {
	tb.Helper()
	c.server(tb, addr).Resume(tb)
	c.mu.Lock()
	delete(c.paused, addr)
	c.mu.Unlock()
}

// Restart starts the killed node at addr again on the same port, with the
// same cluster bus port and nodes.conf (and, persistence being off, no
// data).
func (c *FailoverCluster) Restart(tb testing.TB, addr string) {
	tb.Helper()
	c.server(tb, addr).Restart(tb)
}

// WaitFailover waits until every running node agrees that slot is served
// by a master other than old, and reports cluster_state:ok: the replica
// has been promoted and the cluster serves every slot again. It returns
// the new master.
func (c *FailoverCluster) WaitFailover(tb testing.TB, slot int, old NodeInfo) NodeInfo {
	tb.Helper()
	var promoted NodeInfo
	c.poll(tb, fmt.Sprintf("the failover of %s (slot %d)", old.Addr, slot), func() (bool, string) {
		promoted = NodeInfo{}
		for _, addr := range c.Running() {
			nodes, err := clusterNodes(addr)
			if err != nil {
				return false, err.Error()
			}
			i := slices.IndexFunc(nodes, func(n NodeInfo) bool { return n.Master && !n.Failed && n.Owns(slot) })
			switch {
			case i < 0:
				return false, addr + " sees no master for the slot"
			case nodes[i].ID == old.ID:
				return false, addr + " still sees the old master"
			case promoted.ID != "" && promoted.ID != nodes[i].ID:
				return false, "nodes disagree on the new master"
			}
			promoted = nodes[i]
		}
		return c.stateOK()
	})
	return promoted
}

// WaitRejoined waits until the node at addr, restarted after a failover,
// is a replica of master in sync with it, and every running node reports
// cluster_state:ok.
func (c *FailoverCluster) WaitRejoined(tb testing.TB, addr string, master NodeInfo) {
	tb.Helper()
	c.poll(tb, fmt.Sprintf("%s to rejoin as a replica of %s", addr, master.Addr), func() (bool, string) {
		nodes, err := clusterNodes(addr)
		if err != nil {
			return false, err.Error()
		}
		if self := nodes[0]; self.Master || self.MasterID != master.ID {
			return false, fmt.Sprintf("%s is %+v", addr, self)
		}
		info, err := command(addr, "INFO", "replication")
		if err != nil || !hasLine(info, "master_link_status:up") {
			return false, fmt.Sprintf("%s replication: %q %v", addr, info, err)
		}
		return c.stateOK()
	})
}

// WaitHealthy waits until every running node reports cluster_state:ok
// and knows every node, and every running replica is in sync with its
// master.
func (c *FailoverCluster) WaitHealthy(tb testing.TB) {
	tb.Helper()
	c.poll(tb, "a healthy cluster", func() (bool, string) {
		masters := 0
		for _, addr := range c.Running() {
			info, err := command(addr, "INFO", "replication")
			if err != nil {
				return false, err.Error()
			}
			switch {
			case hasLine(info, "role:master"):
				masters++
			case !hasLine(info, "master_link_status:up"):
				return false, addr + ": replica not in sync"
			}
		}
		if masters != c.masters {
			return false, fmt.Sprintf("%d masters, want %d", masters, c.masters)
		}
		// Every node has heard (gossip) who replicates whom: a master
		// without slots is a replica not yet known as one.
		running := c.Running()
		for _, addr := range running {
			nodes, err := clusterNodes(addr)
			if err != nil {
				return false, err.Error()
			}
			for _, n := range nodes {
				if slices.Contains(running, n.Addr) && n.Master && len(n.Slots) == 0 {
					return false, fmt.Sprintf("%s sees %s as a master without slots", addr, n.Addr)
				}
			}
		}
		return c.stateOK()
	})
}

// stateOK: every running node says cluster_state:ok and knows all nodes.
func (c *FailoverCluster) stateOK() (bool, string) {
	want := []string{"cluster_state:ok", "cluster_slots_ok:16384", "cluster_known_nodes:" + strconv.Itoa(len(c.nodes))}
	for _, addr := range c.Running() {
		info, err := command(addr, "CLUSTER", "INFO")
		if err != nil {
			return false, err.Error()
		}
		for _, w := range want {
			if !hasLine(info, w) {
				return false, addr + ": " + strings.ReplaceAll(info, "\r\n", " ")
			}
		}
	}
	return true, ""
}

// poll calls cond until it holds, failing tb after failoverWait.
func (c *FailoverCluster) poll(tb testing.TB, what string, cond func() (bool, string)) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failoverWait)
	defer cancel()
	for {
		ok, last := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("redistest: waiting for %s: not within %v; last: %s", what, failoverWait, last)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
