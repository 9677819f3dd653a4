package redistest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
)

func TestSharedCluster(t *testing.T) {
	c := redistest.SharedCluster(t)
	if got := len(c.Addrs()); got != 3 {
		t.Fatalf("masters = %d, want 3", got)
	}
	cl := c.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true })
	ctx := context.Background()

	// Keys spread over the slots end up on every master.
	for i := range 30 {
		k := fmt.Sprintf("k%d", i)
		if err := cl.Do(ctx, cl.B().Set().Key(k).Value("v").Build()).Error(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	perNode := map[string]int{}
	for addr, node := range cl.Nodes() {
		n, err := node.Do(ctx, node.B().Dbsize().Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		perNode[addr] = int(n)
	}
	if len(perNode) != 3 || slices.Contains(mapValues(perNode), 0) {
		t.Errorf("keys per node = %v, want some on each of 3 masters", perNode)
	}
	if got := redistest.Keys(t, cl, "k*"); len(got) != 30 {
		t.Errorf("Keys over all nodes = %d keys, want 30", len(got))
	}

	// rueidis really guards slots: a cross-slot command panics client-side.
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "slot") {
				t.Errorf("cross-slot MGET: recover() = %v, want a panic about slots", r)
			}
		}()
		cl.Do(ctx, cl.B().Mget().Key("{a}1", "{b}2").Build())
	}()

	// The next user gets it empty.
	again := redistest.SharedCluster(t)
	if got := redistest.Keys(t, again.Client(t), "*"); len(got) != 0 {
		t.Errorf("keys after SharedCluster again = %v, want none", got)
	}
}

func TestClusterURL(t *testing.T) {
	c := redistest.SharedCluster(t)
	opt, err := rueidis.ParseURL(c.URL())
	if err != nil {
		t.Fatalf("ParseURL(%s): %v", c.URL(), err)
	}
	if got, want := opt.InitAddress, c.Addrs(); !slices.Equal(got, want) {
		t.Errorf("seeds from URL = %v, want %v", got, want)
	}
	cl, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := cl.Mode(); got != rueidis.ClientModeCluster {
		t.Errorf("mode of a client from URL = %s, want cluster", got)
	}
}

func TestTargets(t *testing.T) {
	var names []string
	redistest.Targets(t, func(t *testing.T, tg redistest.Target) {
		names = append(names, tg.Name())
		cl := tg.Client(t)
		if got := cl.Mode(); got != tg.Mode() {
			t.Errorf("%s: mode = %s, want %s", tg.Name(), got, tg.Mode())
		}
		set(t, cl, "v")
		if v, _ := get(t, cl, false); v != "v" {
			t.Errorf("%s: GET k = %q, want v", tg.Name(), v)
		}
	})
	if !slices.Equal(names, []string{"single", "cluster"}) {
		t.Errorf("targets = %v, want single, cluster", names)
	}
}

func mapValues(m map[string]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
