package main

import (
	"io"
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
	c := rr(2000, 900*us, 3*ms, 3, 30*us, 6*us, 9*us, 0, 2)
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
		{"3 rounds: median is the middle, not the mean", []runResult{a, b, c}, runResult{
			wrkResult:  wrkResult{requests: 60000, reqPerSec: 2000, p50: 700 * us, p99: 3 * ms, non2xx: 5, sockErrs: 3, cpu: 3 * time.Second},
			cmdsPerReq: 3, srvCPU: 20 * us, redisCPU: 6 * us, wrkCPU: 9 * us,
		}},
		{"4 rounds, unsorted: median of the middle two", []runResult{b, d, a, c}, runResult{
			wrkResult:  wrkResult{requests: 120000, reqPerSec: 3000, p50: 600 * us, p99: 2500 * us, non2xx: 5, sockErrs: 3, cpu: 4 * time.Second},
			cmdsPerReq: 4, srvCPU: 25 * us, redisCPU: 5 * us, wrkCPU: 7 * us,
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
}

func TestParseFlagsRounds(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil || cfg.rounds != 2 {
		t.Errorf("parseFlags() rounds = %d, %v; want 2, nil", cfg.rounds, err)
	}
	cfg, err = parseFlags([]string{"-rounds", "3"}, io.Discard)
	if err != nil || cfg.rounds != 3 {
		t.Errorf("parseFlags(-rounds 3) rounds = %d, %v; want 3, nil", cfg.rounds, err)
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
	for _, want := range []string{"3 rounds", "order reversed every other round", "req/s, Redis cmds/req and CPU: mean", "p50 and p99: median"} {
		if !strings.Contains(got, want) {
			t.Errorf("roundsNote(3) = %q, want it to contain %q", got, want)
		}
	}
}
