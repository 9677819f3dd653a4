package redisrepo_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/redisrepo"
)

func cpuOf(t *testing.T, pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.Atoi(f[11])
	k, _ := strconv.Atoi(f[12])
	return time.Duration(u+k) * 10 * time.Millisecond
}

func TestZZCost(t *testing.T) {
	srv := redistest.Start(t)
	e := newEnvOn(t, srv)
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	uid := uuid.New()
	p := carol(uid, 10000)
	mustSave(t, s, p)
	ctx := context.Background()
	info, _ := e.raw.Do(ctx, e.raw.B().Info().Section("server").Build()).ToString()
	pid := ""
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "process_id:"); ok {
			pid = v
		}
	}
	const n = 10
	e.raw.Do(ctx, e.raw.B().Arbitrary("CONFIG", "RESETSTAT").Build())
	e.raw.Do(ctx, e.raw.B().Arbitrary("CONFIG", "SET", "slowlog-log-slower-than", "200").Build())
	e.raw.Do(ctx, e.raw.B().Arbitrary("CONFIG", "SET", "slowlog-max-len", "100000").Build())
	e.raw.Do(ctx, e.raw.B().Arbitrary("SLOWLOG", "RESET").Build())
	c0 := cpuOf(t, pid)
	start := time.Now()
	for range n {
		mustSave(t, s, p)
	}
	wall := time.Since(start)
	c1 := cpuOf(t, pid)
	info, _ = e.raw.Do(ctx, e.raw.B().Info().Section("commandstats").Build()).ToString()
	for _, l := range strings.Split(info, "\r\n") {
		if strings.HasPrefix(l, "cmdstat_evalsha") || strings.HasPrefix(l, "cmdstat_unlink") {
			t.Logf("%s", l)
		}
	}
	r, _ := e.raw.Do(ctx, e.raw.B().Arbitrary("SLOWLOG", "GET", "100000").Build()).ToArray()
	byCmd := map[string][]int64{}
	for _, x := range r {
		f, _ := x.ToArray()
		us, _ := f[2].AsInt64()
		args, _ := f[3].AsStrSlice()
		name := args[0]
		if len(args) > 2 {
			name += " " + args[2]
		}
		byCmd[name] = append(byCmd[name], us)
	}
	for n, v := range byCmd {
		slices.Sort(v)
		t.Logf("%-16s n=%4d p50=%5d p90=%5d max=%5d", n, len(v), v[len(v)/2], v[len(v)*9/10], v[len(v)-1])
	}
	t.Log(fmt.Sprintf("%d saves: wall %v, redis CPU %v = %v per save", n, wall, c1-c0, (c1-c0)/n))
}
