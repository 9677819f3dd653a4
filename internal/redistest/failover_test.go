package redistest_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
)

// The failover harness itself: three masters with a replica each; a killed
// master's replica takes over with the data, and the killed node, started
// again, comes back as the new master's replica.
func TestFailoverCluster(t *testing.T) {
	fc := redistest.StartFailoverCluster(t, time.Second)
	masters := fc.Masters(t)
	if len(masters) != 3 {
		t.Fatalf("masters = %+v, want 3", masters)
	}
	nodes := fc.Nodes(t, masters[0].Addr)
	if len(nodes) != 6 {
		t.Fatalf("CLUSTER NODES lists %d nodes, want 6", len(nodes))
	}
	for _, m := range masters {
		replicas := 0
		for _, n := range nodes {
			if !n.Master && n.MasterID == m.ID {
				replicas++
			}
		}
		if replicas != 1 {
			t.Errorf("master %s has %d replicas, want 1", m.Addr, replicas)
		}
	}

	ctx := context.Background()
	cl := fc.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true })
	const key = "{victim}k"
	slot := fc.KeySlot(t, key)
	old := fc.Master(t, slot)
	if err := cl.Do(ctx, cl.B().Set().Key(key).Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	// Replication is asynchronous: make sure the replica has the key.
	waitReplicated(t, fc, old)

	fc.Kill(t, old.Addr)
	if got := len(fc.Running()); got != 5 {
		t.Fatalf("running after Kill = %d, want 5", got)
	}
	promoted := fc.WaitFailover(t, slot, old)
	if promoted.ID == old.ID || !promoted.Owns(slot) {
		t.Fatalf("promoted = %+v, old = %+v", promoted, old)
	}
	if got := fc.Master(t, slot).Addr; got != promoted.Addr {
		t.Errorf("Master(slot) = %s, want the promoted %s", got, promoted.Addr)
	}
	got, err := cl.Do(ctx, cl.B().Get().Key(key).Build()).ToString()
	if err != nil || got != "v" {
		t.Errorf("GET after the failover = %q, %v; want v from the promoted replica", got, err)
	}

	fc.Restart(t, old.Addr)
	fc.WaitRejoined(t, old.Addr, promoted)
	fc.WaitHealthy(t)
	if self := fc.Nodes(t, old.Addr)[0]; self.Master || self.MasterID != promoted.ID {
		t.Errorf("the restarted node is %+v, want a replica of %s", self, promoted.ID)
	}
}

// waitReplicated waits until master's replica holds a key.
func waitReplicated(t *testing.T, fc *redistest.FailoverCluster, master redistest.NodeInfo) {
	t.Helper()
	for _, n := range fc.Nodes(t, master.Addr) {
		if n.Master || n.MasterID != master.ID {
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for fc.Command(t, n.Addr, "DBSIZE") == "0" {
			if time.Now().After(deadline) {
				t.Fatalf("replica %s never got the key", n.Addr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return
	}
	t.Fatalf("master %s has no replica", master.Addr)
}
