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

// aggregate folds the rounds of one (case, server) into the row the table
// shows. req/s, Redis commands and CPU time per request are means: each
// round runs equally long, so their mean is what one long run would show.
// p50 and p99 are medians, so that one round's stall does not set the
// tail. Requests, wrk's CPU time and the error counts are sums, so that an
// error in any round shows up in the table. No rounds give the zero result.
func aggregate(rounds []runResult) runResult {
	var out runResult
	if len(rounds) == 0 {
		return out
	}
	var p50s, p99s []time.Duration
	for _, r := range rounds {
		out.requests += r.requests
		out.non2xx += r.non2xx
		out.sockErrs += r.sockErrs
		out.wrkResult.cpu += r.wrkResult.cpu // runResult.cpu() hides the field
		out.reqPerSec += r.reqPerSec
		out.cmdsPerReq += r.cmdsPerReq
		p50s = append(p50s, r.p50)
		p99s = append(p99s, r.p99)
	}
	n := float64(len(rounds))
	out.reqPerSec /= n
	out.cmdsPerReq /= n
	out.p50, out.p99 = median(p50s), median(p99s)
	out.srvCPU = meanDur(rounds, func(r runResult) time.Duration { return r.srvCPU })
	out.redisCPU = meanDur(rounds, func(r runResult) time.Duration { return r.redisCPU })
	out.wrkCPU = meanDur(rounds, func(r runResult) time.Duration { return r.wrkCPU })
	return out
}

// meanDur is the mean of one duration field over rs, which is not empty.
func meanDur(rs []runResult, field func(runResult) time.Duration) time.Duration {
	var sum time.Duration
	for _, r := range rs {
		sum += field(r)
	}
	return sum / time.Duration(len(rs))
}

// median of ds, the mean of the middle two for an even count; ds is not
// reordered (callers keep it in measuring order). Zero for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	m := len(s) / 2
	if len(s)%2 == 0 {
		return (s[m-1] + s[m]) / 2
	}
	return s[m]
}
