package redistest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
)

func TestStartSentinel(t *testing.T) {
	st := redistest.StartSentinel(t)
	if m := st.Master(t); m != st.Nodes[0] {
		t.Fatalf("Master = %v, want the first node %s", m, st.Nodes[0].Addr)
	}
	opt, err := rueidis.ParseURL(st.URL())
	if err != nil {
		t.Fatalf("ParseURL(%s): %v", st.URL(), err)
	}
	if len(opt.InitAddress) != 3 || opt.Sentinel.MasterSet != redistest.MasterSet {
		t.Errorf("ParseURL(%s): addresses %v, master set %q; want the 3 sentinels and %q",
			st.URL(), opt.InitAddress, opt.Sentinel.MasterSet, redistest.MasterSet)
	}

	// A client through the sentinels writes to the master; the replica
	// has it once WaitReplicated returns.
	c := st.Client(t)
	for addr := range c.Nodes() {
		if addr != st.Nodes[0].Addr {
			t.Errorf("the client talks to %s, want the master %s", addr, st.Nodes[0].Addr)
		}
	}
	if err := c.Do(context.Background(), c.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	st.WaitReplicated(t, st.Nodes[0])
	if got := st.Nodes[1].Command(t, "GET", "k"); got != "v" {
		t.Errorf("GET k on the replica = %q, want v", got)
	}
	if role := st.Nodes[1].Command(t, "INFO", "replication"); !strings.Contains(role, "role:slave\r\n") {
		t.Errorf("the second node is not a replica:\n%s", role)
	}
}
