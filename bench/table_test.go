package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// tableResults are three rounds on bare, blob and profilecache (-idle=false)
// for which ratios of the aggregated figures would say something else than
// the per-round ratios the table shows: the machine was slower in rounds 2
// and 3, for the servers measured next to each other alike.
func tableResults() *results {
	us, ms := time.Microsecond, time.Millisecond
	// runs are one (case, server)'s rounds at these req/s, with p99 and the
	// CPU time per request of the server's rounds (split 2:1:1 over server,
	// Redis and wrk).
	runs := func(p99 time.Duration, cpu []time.Duration, xs ...float64) []runResult {
		var rs []runResult
		for k, x := range xs {
			rs = append(rs, runResult{
				wrkResult: wrkResult{requests: int64(x) * 10, reqPerSec: x, p50: p99 / 4, p99: p99},
				srvCPU:    cpu[k] / 2, redisCPU: cpu[k] / 4, wrkCPU: cpu[k] / 4,
			})
		}
		return rs
	}
	bareCPU := []time.Duration{10 * us, 16 * us, 16 * us}
	blobCPU := []time.Duration{20 * us, 32 * us, 32 * us}
	oursCPU := []time.Duration{20 * us, 40 * us, 24 * us} // × bare by CPU: 0.5, 0.4, 0.67
	bare := func(xs ...float64) []runResult { return runs(ms, bareCPU, xs...) }
	blob := func(xs ...float64) []runResult { return runs(2*ms, blobCPU, xs...) }
	ours := func(xs ...float64) []runResult { return runs(ms, oursCPU, xs...) }
	rounds := [][][]runResult{
		// × bare 0.70, 0.70, 0.90; the medians' ratio would be 7000 / 8000.
		{bare(10000, 6000, 8000), blob(5000, 3000, 4000), ours(7000, 4200, 7200)},
		// × bare 0.679 in every round: 0.97, 0.97, 0.75 × alice's; carol's
		// median req/s over alice's would be 5432 / 7000 = 0.78.
		{bare(10000, 6000, 8000), blob(5000, 3000, 4000), ours(6790, 4074, 5432)},
		// × bare 0.45 in every round.
		{bare(10000, 10000, 10000), blob(5000, 5000, 5000), ours(4500, 4500, 4500)},
		// × bare 0.423: 0.94 × alice's.
		{bare(10000, 6000, 10000), blob(5000, 3000, 5000), ours(4230, 2538, 4230)},
	}
	rounds[3][2][1].non2xx = 1
	return &results{
		cfg:     config{rounds: 3, load: load{threads: 2, conns: 64, duration: 10 * time.Second}},
		servers: []string{srvBare, srvBlob, srvOurs},
		rounds:  rounds,
		runs:    aggregateAll(rounds),
		login:   map[string]loginResult{srvBlob: {median: ms, bytes1: 1000}, srvOurs: {median: 2 * ms, bytes1: 2000}},
	}
}

func TestCaseVerdicts(t *testing.T) {
	pass := "PASS (1.00 ms vs 2.00 ms)"
	tests := []struct {
		i                int
		targets, results []string
	}{
		{0, []string{"≥ 0.60 × bare", "p99 < blob's"}, []string{"PASS (0.70)", pass}},
		{1, []string{"≥ 0.95 × alice's (both × bare)", "p99 < blob's"}, []string{"PASS (0.97)", pass}},
		{2, []string{"≥ 0.40 × bare", "p99 < blob's"}, []string{"PASS (0.45)", pass}},
		{3, []string{"≥ 0.90 × alice's (both × bare)", "p99 < blob's", "no errors"},
			[]string{"PASS (0.94)", pass, "MISS (1 non-2xx, 0 socket errors)"}},
	}
	res := tableResults()
	for _, tt := range tests {
		var targets, results []string
		for _, v := range caseVerdicts(res, tt.i) {
			targets = append(targets, v.target)
			results = append(results, v.result())
		}
		if !slices.Equal(targets, tt.targets) || !slices.Equal(results, tt.results) {
			t.Errorf("caseVerdicts(case %d) = %q → %q, want %q → %q", tt.i, targets, results, tt.targets, tt.results)
		}
	}
}

func TestPrintTableRatios(t *testing.T) {
	var b strings.Builder
	printTable(&b, tableResults())
	out := b.String()
	// The medians of the rounds, and the medians of the per-round ratios:
	// × bare 0.70 (not 0.88), × blob 1.40 (not 1.80), × bare by CPU 0.50 (not 0.67).
	want := []string{
		"| GET /api/me, alice | bare | 8,000 | 250 µs | 1.00 ms | 1.00 | 2.00 | 0.00 | 8 + 4 + 4 | 1.00 |  |  |",
		"|  | blob | 4,000 | 500 µs | 2.00 ms | 0.50 | 1.00 | 0.00 | 16 + 8 + 8 | 0.50 |  |  |",
		"|  | **profilecache** | 7,000 | 250 µs | 1.00 ms | 0.70 | 1.40 | 0.00 | 12 + 6 + 6 | 0.50 | ≥ 0.60 × bare; p99 < blob's | PASS (0.70); PASS (1.00 ms vs 2.00 ms) |",
		"| GET /api/me, carol | bare |",
		"|  | **profilecache** | 5,432 | 250 µs | 1.00 ms | 0.68 | 1.36 | 0.00 | 12 + 6 + 6 | 0.50 | ≥ 0.95 × alice's (both × bare); p99 < blob's | PASS (0.97); PASS (1.00 ms vs 2.00 ms) |",
		"median of the per-round ratios",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("printTable: no %q in\n%s", w, out)
		}
	}
	// One row per case and server, as before.
	if n := strings.Count(out, "| **profilecache** |"); n != len(cases) {
		t.Errorf("printTable: %d profilecache rows, want %d\n%s", n, len(cases), out)
	}
}

func TestTripsVerdict(t *testing.T) {
	tests := []struct {
		trips []string
		ok    bool
		got   string
	}{
		{[]string{"GET pc:{u:1}:fence", "EVALSHA (65 keys)", "EVALSHA (2 keys)", "LRANGE … LRANGE (3 commands)", "UNLINK (64 keys)"}, true, "largest 65"},
		{[]string{"EVALSHA (129 keys)"}, false, "largest 129"},
		{[]string{"GET pc:{u:1}:fence", "MULTI … EXEC (20335 commands)"}, false, "largest 20335"},
		{[]string{"EVALSHA (10169 keys)"}, false, "largest 10169"},
		{[]string{"HGET pc:{u:1}:meta gen"}, true, "largest 1"},
	}
	for _, tt := range tests {
		v := tripsVerdict(tt.trips)
		if v.ok != tt.ok || v.got != tt.got {
			t.Errorf("tripsVerdict(%q) = %v %q, want %v %q", tt.trips, v.ok, v.got, tt.ok, tt.got)
		}
	}
}

func TestCollapseTrips(t *testing.T) {
	got := collapseTrips([]string{"GET", "EVALSHA (257 keys)", "EVALSHA (257 keys)", "EVALSHA (40 keys)", "UNLINK (256 keys)", "UNLINK (256 keys)"})
	want := []string{"GET", "EVALSHA (257 keys) ×2", "EVALSHA (40 keys)", "UNLINK (256 keys) ×2"}
	if !slices.Equal(got, want) {
		t.Errorf("collapseTrips = %q, want %q", got, want)
	}
}

func TestTripLabels(t *testing.T) {
	c := &countingClient{}
	c.note([]string{"GET", "pc:{u:1}:fence"})
	c.note([]string{"HGET", "pc:{u:00000000-0000-0000-0000-000000000001}:meta", "gen"})
	c.note([]string{"EVALSHA", "04b2722d", "3", "k1", "k2", "k3", "arg"})
	c.note([]string{"UNLINK", "pc:{u:1}:a", "pc:{u:1}:b", "pc:{u:1}:c"})
	c.note([]string{"UNLINK", "pc:{u:1}:a"}, []string{"LRANGE", "pc:{u:1}:orders", "0", "127"})
	want := []string{"GET pc:{u:1}:fence", "HGET", "EVALSHA (3 keys)", "UNLINK (3 keys)", "UNLINK … LRANGE (2 commands)"}
	if !slices.Equal(c.trips, want) {
		t.Errorf("labels %q, want %q", c.trips, want)
	}
	if v := tripsVerdict(c.trips); !v.ok || v.got != "largest 3" {
		t.Errorf("verdict %+v, want ok with largest 3", v)
	}
}
