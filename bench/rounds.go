package main

import (
	"slices"
	"time"
)

// slot is one measurement of a round: an index into cases and one into the
// servers.
type slot struct{ c, s int }

// roundOrder is the order in which round (0-based) measures every case on
// every server: cases interleaved as one round always did, and on odd
// rounds cases and servers both reversed. A slow drift of the machine's
// speed then weighs on every server, and on alice's and carol's cases,
// alike over a pair of rounds, instead of always favouring whoever runs
// first.
func roundOrder(round, nCases, nServers int) []slot {
	order := make([]slot, 0, nCases*nServers)
	for c := range nCases {
		for s := range nServers {
			order = append(order, slot{c, s})
		}
	}
	if round%2 == 1 {
		slices.Reverse(order)
	}
	return order
}

// aggregateAll aggregates each (case, server) of rounds, [case][server][round].
func aggregateAll(rounds [][][]runResult) [][]runResult {
	runs := make([][]runResult, len(rounds))
	for i := range rounds {
		for _, rs := range rounds[i] {
			runs[i] = append(runs[i], aggregate(rs))
		}
	}
	return runs
}

// aggregate folds the rounds of one (case, server) into the row the table
// shows. req/s, Redis commands and CPU time per request, p50 and p99 are
// medians: a neighbour on the machine sometimes slows one run by 40 %, and
// the median of three rounds drops that run where a mean would carry a
// third of it. Requests, wrk's CPU time and the error counts are sums, so
// that an error in any round shows up in the table. No rounds give the zero
// result.
func aggregate(rounds []runResult) runResult {
	var out runResult
	if len(rounds) == 0 {
		return out
	}
	for _, r := range rounds {
		out.requests += r.requests
		out.non2xx += r.non2xx
		out.sockErrs += r.sockErrs
		out.wrkResult.cpu += r.wrkResult.cpu // runResult.cpu() hides the field
	}
	out.reqPerSec = medianOf(rounds, func(r runResult) float64 { return r.reqPerSec })
	out.cmdsPerReq = medianOf(rounds, func(r runResult) float64 { return r.cmdsPerReq })
	out.p50 = medianOf(rounds, func(r runResult) time.Duration { return r.p50 })
	out.p99 = medianOf(rounds, func(r runResult) time.Duration { return r.p99 })
	out.srvCPU = medianOf(rounds, func(r runResult) time.Duration { return r.srvCPU })
	out.redisCPU = medianOf(rounds, func(r runResult) time.Duration { return r.redisCPU })
	out.wrkCPU = medianOf(rounds, func(r runResult) time.Duration { return r.wrkCPU })
	return out
}

// medianOf is the median of one field over rs.
func medianOf[T time.Duration | float64](rs []runResult, field func(runResult) T) T {
	xs := make([]T, 0, len(rs))
	for _, r := range rs {
		xs = append(xs, field(r))
	}
	return median(xs)
}

// median of xs, the mean of the middle two for an even count; xs is not
// reordered (callers keep it in measuring order). Zero for none.
func median[T time.Duration | float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	m := len(s) / 2
	if len(s)%2 == 0 {
		return (s[m-1] + s[m]) / 2
	}
	return s[m]
}

// The table's ratios are taken round by round, between runs of one case
// measured within a minute, and then the median over the rounds: a
// neighbour who slows the machine for a while slows both runs of a ratio
// alike, so it cancels, where the ratio of two medians (or means) would mix
// runs from different minutes. Each takes the runs of one (case, server) in
// round order, as results.rounds holds them, and uses the rounds both
// sides have.

// rpsRatio is the median over the rounds of s's req/s over base's: the
// × bare and × blob columns.
func rpsRatio(s, base []runResult) float64 {
	return median(rpsRatios(s, base))
}

// rpsRatios are s's req/s over base's, round by round.
func rpsRatios(s, base []runResult) []float64 {
	return perRound(s, base, func(s, base runResult) float64 { return s.reqPerSec / base.reqPerSec })
}

// cpuRatio is the median over the rounds of bare's CPU time per request
// over s's: the × bare by CPU column, what s's req/s would be × bare on an
// otherwise idle machine that all processes saturate.
func cpuRatio(s, bare []runResult) float64 {
	return median(perRound(s, bare, func(s, bare runResult) float64 { return float64(bare.cpu()) / float64(s.cpu()) }))
}

// relRatio compares s × bare with ref × refBare round by round (e.g.
// profilecache for carol × bare against profilecache for alice × bare), so
// that a run slowed by a neighbour is set against the bare run measured
// next to it rather than against another case's run minutes away; the
// median over the rounds.
func relRatio(s, bare, ref, refBare []runResult) float64 {
	xs, refs := rpsRatios(s, bare), rpsRatios(ref, refBare)
	n := min(len(xs), len(refs))
	qs := make([]float64, n)
	for k := range n {
		qs[k] = xs[k] / refs[k]
	}
	return median(qs)
}

// perRound is f of each round of a and b, over the rounds both have.
func perRound(a, b []runResult, f func(a, b runResult) float64) []float64 {
	n := min(len(a), len(b))
	out := make([]float64, n)
	for k := range n {
		out[k] = f(a[k], b[k])
	}
	return out
}
