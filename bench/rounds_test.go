package main

import (
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRoundOrder(t *testing.T) {
	forward := []slot{{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}}
	reversed := []slot{{1, 2}, {1, 1}, {1, 0}, {0, 2}, {0, 1}, {0, 0}}
	tests := []struct {
		round int
		want  []slot
	}{
		{0, forward},
		{1, reversed},
		{2, forward},
		{3, reversed},
	}
	for _, tt := range tests {
		if got := roundOrder(tt.round, 2, 3); !slices.Equal(got, tt.want) {
			t.Errorf("roundOrder(%d, 2, 3) = %v, want %v", tt.round, got, tt.want)
		}
	}
}

func TestRoundOrderEverySlotOnce(t *testing.T) {
	// The harness's shape: 4 cases on 4 servers (3 with -idle=false).
	for _, nServers := range []int{3, 4} {
		for round := range 4 {
			got := roundOrder(round, 4, nServers)
			if len(got) != 4*nServers {
				t.Fatalf("roundOrder(%d, 4, %d) has %d slots, want %d", round, nServers, len(got), 4*nServers)
			}
			seen := map[slot]bool{}
			for _, sl := range got {
				if sl.c < 0 || sl.c >= 4 || sl.s < 0 || sl.s >= nServers || seen[sl] {
					t.Fatalf("roundOrder(%d, 4, %d): slot %v out of range or repeated in %v", round, nServers, sl, got)
				}
				seen[sl] = true
			}
			// Servers of one case stay together: interleaved, as in one round.
			for k := 1; k < len(got); k++ {
				if got[k].c != got[k-1].c && k%nServers != 0 {
					t.Errorf("roundOrder(%d, 4, %d) = %v: case changes within a server sweep", round, nServers, got)
				}
			}
		}
	}
}

func TestRoundOrderEmpty(t *testing.T) {
	if got := roundOrder(1, 0, 4); len(got) != 0 {
		t.Errorf("roundOrder(1, 0, 4) = %v, want none", got)
	}
}

// rr is a runResult with the figures aggregate treats differently.
func rr(rps float64, p50, p99 time.Duration, cmds float64, srv, rds, wrk time.Duration, non2xx, sockErrs int64) runResult {
	return runResult{
		wrkResult:  wrkResult{requests: int64(rps) * 10, reqPerSec: rps, p50: p50, p99: p99, non2xx: non2xx, sockErrs: sockErrs, cpu: time.Second},
		cmdsPerReq: cmds, srvCPU: srv, redisCPU: rds, wrkCPU: wrk,
	}
}

func TestAggregate(t *testing.T) {
	us := time.Microsecond
	ms := time.Millisecond
	a := rr(1000, 500*us, 2*ms, 2, 10*us, 4*us, 6*us, 0, 0)
	b := rr(3000, 700*us, 8*ms, 4, 20*us, 8*us, 12*us, 5, 1)
	c := rr(500, 900*us, 3*ms, 9, 60*us, 15*us, 3*us, 0, 2) // a round a neighbour slowed
	d := rr(6000, 100*us, 1*ms, 7, 40*us, 2*us, 1*us, 0, 0)
	tests := []struct {
		name   string
		rounds []runResult
		want   runResult
	}{
		{"none", nil, runResult{}},
		{"1 round: itself", []runResult{b}, b},
		{"2 rounds: median is the mean of the two", []runResult{a, b}, runResult{
			wrkResult:  wrkResult{requests: 40000, reqPerSec: 2000, p50: 600 * us, p99: 5 * ms, non2xx: 5, sockErrs: 1, cpu: 2 * time.Second},
			cmdsPerReq: 3, srvCPU: 15 * us, redisCPU: 6 * us, wrkCPU: 9 * us,
		}},
		// The means would be 1500 req/s, 5 cmds/req and 30 + 9 + 7 µs.
		{"3 rounds: median is the middle, not the mean", []runResult{a, b, c}, runResult{
			wrkResult:  wrkResult{requests: 45000, reqPerSec: 1000, p50: 700 * us, p99: 3 * ms, non2xx: 5, sockErrs: 3, cpu: 3 * time.Second},
			cmdsPerReq: 4, srvCPU: 20 * us, redisCPU: 8 * us, wrkCPU: 6 * us,
		}},
		// The means would be 2625 req/s and 32.5 + 7.25 + 5.5 µs.
		{"4 rounds, unsorted: median of the middle two", []runResult{b, d, a, c}, runResult{
			wrkResult:  wrkResult{requests: 105000, reqPerSec: 2000, p50: 600 * us, p99: 2500 * us, non2xx: 5, sockErrs: 3, cpu: 4 * time.Second},
			cmdsPerReq: 5.5, srvCPU: 30 * us, redisCPU: 6 * us, wrkCPU: 4500 * time.Nanosecond,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.rounds)
			if got := aggregate(tt.rounds); got != tt.want {
				t.Errorf("aggregate =\n %+v\nwant\n %+v", got, tt.want)
			}
			if !slices.Equal(in, tt.rounds) {
				t.Errorf("aggregate reordered its input: %v, was %v", tt.rounds, in)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{7}, 7},
		{[]time.Duration{9, 3}, 6},
		{[]time.Duration{9, 1, 4}, 4},
		{[]time.Duration{10, 1, 4, 2}, 3},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	floats := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{0.7}, 0.7},
		{[]float64{0.5, 0.25}, 0.375},
		{[]float64{0.72, 0.42, 0.7}, 0.7},
		{[]float64{4, 1, 2, 8}, 3},
	}
	for _, tt := range floats {
		in := slices.Clone(tt.in)
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("median reordered its input: %v, was %v", tt.in, in)
		}
	}
}

// rps are runs, one per round, at these req/s.
func rps(xs ...float64) []runResult {
	var rs []runResult
	for _, x := range xs {
		rs = append(rs, runResult{wrkResult: wrkResult{reqPerSec: x}})
	}
	return rs
}

// cpus are runs, one per round, at these CPU times per request, split over
// server, Redis and wrk (cpu() is their sum).
func cpus(ds ...time.Duration) []runResult {
	var rs []runResult
	for _, d := range ds {
		rs = append(rs, runResult{srvCPU: d / 2, redisCPU: d / 4, wrkCPU: d / 4})
	}
	return rs
}

// near is whether two ratios agree to far more than the table's 2 places.
func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestRPSRatio(t *testing.T) {
	tests := []struct {
		name    string
		s, base []runResult
		want    float64
	}{
		{"none", nil, nil, 0},
		{"1 round", rps(7000), rps(10000), 0.7},
		{"undisturbed", rps(7000, 7000, 7000), rps(10000, 10000, 10000), 0.7},
		{"one round 40 % slower for both: the undisturbed ratio", rps(7000, 4200, 7000), rps(10000, 6000, 10000), 0.7},
		// Medians of req/s would give 7000 / 8000 = 0.875.
		{"two rounds slowed, by different amounts, for both", rps(7000, 4200, 7200), rps(10000, 6000, 8000), 0.7},
		{"one round slowed for s alone: dropped", rps(7000, 4200, 7200), rps(10000, 10000, 10000), 0.7},
		{"one round slowed for base alone: dropped", rps(7000, 7000, 7200), rps(10000, 6000, 10000), 0.72},
		{"2 rounds: the mean of the two ratios", rps(6000, 6000), rps(10000, 8000), 0.675},
		{"a round only s has is left out", rps(7000, 7000, 100), rps(10000, 10000), 0.7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rpsRatio(tt.s, tt.base); !near(got, tt.want) {
				t.Errorf("rpsRatio = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCPURatio(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		name    string
		s, bare []runResult
		want    float64
	}{
		{"none", nil, nil, 0},
		{"bare costs half as much", cpus(20*us, 20*us, 20*us), cpus(10*us, 10*us, 10*us), 0.5},
		{"one round dearer for both: the undisturbed ratio", cpus(20*us, 32*us, 20*us), cpus(10*us, 16*us, 10*us), 0.5},
		// Medians of CPU time would give 10 / 25 = 0.4.
		{"per round, not of the medians", cpus(20*us, 40*us, 25*us), cpus(10*us, 16*us, 16*us), 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cpuRatio(tt.s, tt.bare); !near(got, tt.want) {
				t.Errorf("cpuRatio = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRelRatio(t *testing.T) {
	aliceBare, aliceOurs := rps(10000, 10000, 10000), rps(7000, 7000, 7000) // 0.70 × bare
	tests := []struct {
		name                     string
		ours, bare, ref, refBare []runResult
		want                     float64
	}{
		{"none", nil, nil, nil, nil, 0},
		{"undisturbed", rps(6860, 6860, 6860), rps(10000, 10000, 10000), aliceOurs, aliceBare, 0.98},
		{"one of carol's rounds 40 % slower for both servers", rps(6860, 4116, 6860), rps(10000, 6000, 10000), aliceOurs, aliceBare, 0.98},
		// Carol's median req/s over alice's would be 5488 / 7000 = 0.78.
		{"two of carol's rounds slowed, by different amounts, for both servers", rps(6860, 4116, 5488), rps(10000, 6000, 8000), aliceOurs, aliceBare, 0.98},
		{"one of alice's rounds 40 % slower for both servers", rps(6860, 6860, 6860), rps(10000, 10000, 10000), rps(7000, 4200, 7000), rps(10000, 6000, 10000), 0.98},
		// Each round's carol against the same round's alice: 0.60/0.65, 0.70/0.70,
		// 0.80/0.90. The median of carol's × bare over alice's would be 1.
		{"round by round: carol against the same round's alice", rps(6000, 7000, 8000), rps(10000, 10000, 10000), rps(6500, 7000, 9000), rps(10000, 10000, 10000), 12.0 / 13},
		{"one of carol's runs slowed alone: dropped", rps(6860, 4116, 6930), rps(10000, 10000, 10000), aliceOurs, aliceBare, 0.98},
		{"2 rounds: the mean of the two", rps(6860, 6300), rps(10000, 10000), aliceOurs, aliceBare, 0.94},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := relRatio(tt.ours, tt.bare, tt.ref, tt.refBare); !near(got, tt.want) {
				t.Errorf("relRatio = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAggregateAll(t *testing.T) {
	rounds := [][][]runResult{{rps(1000, 3000, 2000), rps(5)}, {rps(7, 8)}}
	got := aggregateAll(rounds)
	want := [][]float64{{2000, 5}, {7.5}}
	if len(got) != len(want) {
		t.Fatalf("aggregateAll: %d cases, want %d", len(got), len(want))
	}
	for i := range want {
		var rs []float64
		for _, r := range got[i] {
			rs = append(rs, r.reqPerSec)
		}
		if !slices.Equal(rs, want[i]) {
			t.Errorf("aggregateAll case %d: req/s %v, want %v", i, rs, want[i])
		}
	}
}

func TestParseFlagsRounds(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil || cfg.rounds != 3 {
		t.Errorf("parseFlags() rounds = %d, %v; want 3, nil", cfg.rounds, err)
	}
	cfg, err = parseFlags([]string{"-rounds", "5"}, io.Discard)
	if err != nil || cfg.rounds != 5 {
		t.Errorf("parseFlags(-rounds 5) rounds = %d, %v; want 5, nil", cfg.rounds, err)
	}
	for _, bad := range []string{"0", "-1"} {
		_, err := parseFlags([]string{"-rounds", bad}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-rounds must be at least 1") {
			t.Errorf("parseFlags(-rounds %s) = %v, want the -rounds error", bad, err)
		}
	}
}

func TestRoundsNote(t *testing.T) {
	if got := roundsNote(1); got != "1 round" {
		t.Errorf("roundsNote(1) = %q", got)
	}
	got := roundsNote(3)
	for _, want := range []string{"3 rounds", "order reversed every other round",
		"req/s, p50, p99, Redis cmds/req and CPU: median of the rounds", "× bare, × blob, × bare by CPU and the targets' ratios: median of the per-round ratios"} {
		if !strings.Contains(got, want) {
			t.Errorf("roundsNote(3) = %q, want it to contain %q", got, want)
		}
	}
}
