package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The fixed-rate part (issue 11, part 4): latency as users feel it. wrk
// drives every server to saturation, where the run queues are never empty
// and p99 measures Go's scheduler more than the service. Here vegeta sends
// requests at a fixed rate whatever the answers do (an open model: a slow
// answer does not delay the next request, as a real user's click does not
// wait for another user's), at rates that the blob session still sustains,
// and the table shows p50, p99, p99.9 and max per server.

// fixedServers are the servers the fixed-rate part measures: blob+idle is
// left out, because at these rates it would need more CPU than the machine
// has (it writes the whole blob back on every request: 2 × blob's cost).
var fixedServers = []string{srvBare, srvBlob, srvOurs}

// sample is one request of an attack.
type sample struct {
	seq     uint64        // the order in which vegeta sent it
	sent    time.Time     // when it was sent
	latency time.Duration // from sending to the end of the answer's body
	ok      bool          // 2xx
	err     string
}

// fixedResult is one fixed-rate run, or the rounds of one (case, server).
type fixedResult struct {
	rate     int     // asked, req/s
	requests int64   // sent
	okCount  int64   // answered 2xx
	sentRate float64 // req/s actually sent, first to last
	// lag is how late vegeta sent requests against the schedule (p99): the
	// latencies do not include it, so a large lag means the generator, not
	// the server, fell behind.
	lag                 time.Duration
	p50, p99, p999, max time.Duration
	errors              []string // distinct, at most maxErrors
	// CPU time per request of the server, redis-server and the harness
	// (vegeta runs in it).
	srvCPU, redisCPU, genCPU time.Duration
}

const maxErrors = 3

// held says whether the run was an open model at the asked rate: vegeta
// sent at least 95 % of it. Below that, the requests waited for the
// generator's workers (a closed model), and latencies look better than
// users would see them.
func (r fixedResult) held() bool { return r.sentRate >= 0.95*float64(r.rate) }

// summarize computes one run's figures from its samples. rate is what was
// asked (req/s).
func summarize(samples []sample, rate int) fixedResult {
	r := fixedResult{rate: rate, requests: int64(len(samples))}
	if len(samples) == 0 {
		return r
	}
	lat := make([]time.Duration, 0, len(samples))
	var first, last time.Time
	for i, s := range samples {
		lat = append(lat, s.latency)
		if s.ok {
			r.okCount++
		} else if len(r.errors) < maxErrors && !slices.Contains(r.errors, s.err) {
			r.errors = append(r.errors, s.err)
		}
		if i == 0 || s.sent.Before(first) {
			first = s.sent
		}
		if i == 0 || s.sent.After(last) {
			last = s.sent
		}
	}
	slices.Sort(lat)
	r.p50, r.p99, r.p999 = quantile(lat, 0.50), quantile(lat, 0.99), quantile(lat, 0.999)
	r.max = lat[len(lat)-1]
	// n requests sent over (n-1) periods.
	if span := last.Sub(first); len(samples) > 1 && span > 0 {
		r.sentRate = float64(len(samples)-1) / span.Seconds()
	} else {
		r.sentRate = float64(rate)
	}
	r.lag = quantile(sendLags(samples, rate), 0.99)
	return r
}

// sendLags are how late each sample was sent against a schedule of one
// request every 1/rate from the first, the least late sample counting as
// on time (vegeta's start is not exported), sorted.
func sendLags(samples []sample, rate int) []time.Duration {
	period := float64(time.Second) / float64(rate)
	offs := make([]time.Duration, len(samples))
	var t0 time.Time
	for _, s := range samples {
		if t0.IsZero() || s.sent.Before(t0) {
			t0 = s.sent
		}
	}
	for i, s := range samples {
		offs[i] = s.sent.Sub(t0) - time.Duration(float64(s.seq)*period)
	}
	lo := slices.Min(offs)
	for i := range offs {
		offs[i] -= lo
	}
	slices.Sort(offs)
	return offs
}

// quantile is the nearest-rank q-quantile of sorted: the smallest value
// that at least q of all are at or below. Exact, unlike vegeta's t-digest
// estimate, which matters at p99.9. Zero for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// aggregateFixed folds the rounds of one (case, server) as the saturation
// table does: medians of the rounds for rates, quantiles and CPU; the
// worst max; sums of requests and answers; the errors of every round.
func aggregateFixed(rounds []fixedResult) fixedResult {
	var out fixedResult
	if len(rounds) == 0 {
		return out
	}
	out.rate = rounds[0].rate
	for _, r := range rounds {
		out.requests += r.requests
		out.okCount += r.okCount
		out.max = max(out.max, r.max)
		for _, e := range r.errors {
			if len(out.errors) < maxErrors && !slices.Contains(out.errors, e) {
				out.errors = append(out.errors, e)
			}
		}
	}
	med := func(f func(fixedResult) time.Duration) time.Duration {
		xs := make([]time.Duration, len(rounds))
		for i, r := range rounds {
			xs[i] = f(r)
		}
		return median(xs)
	}
	xs := make([]float64, len(rounds))
	for i, r := range rounds {
		xs[i] = r.sentRate
	}
	out.sentRate = median(xs)
	out.lag = med(func(r fixedResult) time.Duration { return r.lag })
	out.p50 = med(func(r fixedResult) time.Duration { return r.p50 })
	out.p99 = med(func(r fixedResult) time.Duration { return r.p99 })
	out.p999 = med(func(r fixedResult) time.Duration { return r.p999 })
	out.srvCPU = med(func(r fixedResult) time.Duration { return r.srvCPU })
	out.redisCPU = med(func(r fixedResult) time.Duration { return r.redisCPU })
	out.genCPU = med(func(r fixedResult) time.Duration { return r.genCPU })
	return out
}

// p99Ratio is the median over the rounds of s's p99 over base's, each
// ratio between runs of one round and case, measured next to each other.
func p99Ratio(s, base []fixedResult) float64 {
	n := min(len(s), len(base))
	xs := make([]float64, 0, n)
	for k := range n {
		if base[k].p99 > 0 {
			xs = append(xs, float64(s[k].p99)/float64(base[k].p99))
		}
	}
	return median(xs)
}

// The targets of issue 11, part 4.
const targetFixedBare = 1.2 // profilecache's p99 at most this × bare's

// fixedRounds are one case's rounds per server, [server][round], in the
// order of fixedServers.
type fixedRounds [][]fixedResult

// fixedVerdicts are the targets for profilecache in one case: p99 within
// 1.2 × bare's and below blob's, as medians of per-round ratios; and that
// every server got its requests at the asked rate (else the figures are of
// a closed model) without errors.
func fixedVerdicts(rs fixedRounds) []verdict {
	bare, blob, ours := rs[0], rs[1], rs[2]
	xb, xo := p99Ratio(ours, bare), p99Ratio(ours, blob)
	vs := []verdict{
		{target: fmt.Sprintf("p99 ≤ %.1f × bare's", targetFixedBare), ok: xb <= targetFixedBare, got: fmt.Sprintf("%.2f × bare's", xb)},
		{target: "p99 < blob's", ok: xo < 1, got: fmt.Sprintf("%.2f × blob's", xo)},
	}
	var notHeld []string
	for i, name := range fixedServers {
		if r := aggregateFixed(rs[i]); !r.held() {
			notHeld = append(notHeld, fmt.Sprintf("%s %s of %s req/s", name, fmtInt(int64(r.sentRate)), fmtInt(int64(r.rate))))
		}
	}
	if len(notHeld) > 0 {
		vs = append(vs, verdict{target: "rate held (open model)", got: strings.Join(notHeld, ", ")})
	}
	if r := aggregateFixed(ours); r.okCount < r.requests {
		vs = append(vs, verdict{target: "no errors", got: fmt.Sprintf("%d of %d failed", r.requests-r.okCount, r.requests)})
	}
	return vs
}

// fixedResults is what the fixed-rate table shows.
type fixedResults struct {
	cfg     config
	rounds  []fixedRounds // [case][server][round]
	started time.Time
	elapsed time.Duration
	load    [2]string
}

func printFixedTable(w io.Writer, fr *fixedResults) {
	cfg := fr.cfg
	perRun := func(rate int) string { return fmtInt(int64(float64(rate) * cfg.load.duration.Seconds())) }
	fmt.Fprintf(w, "\nFixed rate (open model, vegeta in the harness): %v warm-up + %v per case and server at the rate shown (%s requests per run for alice, %s for carol), cases interleaved; %s; %s; load average %s before, %s after; %v in all\n\n",
		cfg.warmup, cfg.load.duration, perRun(cfg.parts.rateAlice), perRun(cfg.parts.rateCarol), fixedRoundsNote(cfg.rounds),
		fr.started.Format("2006-01-02 15:04"), fr.load[0], fr.load[1], fr.elapsed.Round(time.Second))
	fmt.Fprintln(w, "| case | rate | server | sent req/s | 2xx | p50 | p99 | p99.9 | max | p99 × bare | send lag p99 | CPU µs/req: server + Redis + vegeta | target | result |")
	fmt.Fprintln(w, "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|")
	for i, bc := range cases {
		rs := fr.rounds[i]
		for j, name := range fixedServers {
			r := aggregateFixed(rs[j])
			label, rate := "", ""
			if j == 0 {
				label, rate = bc.name, fmtInt(int64(r.rate))
			}
			target, result := "", ""
			if name == srvOurs {
				var ts, res []string
				for _, v := range fixedVerdicts(rs) {
					ts = append(ts, v.target)
					res = append(res, v.result())
				}
				target, result = strings.Join(ts, "; "), strings.Join(res, "; ")
				name = "**" + name + "**"
			} else {
				result = fixedNote(r)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %s | %s + %s + %s | %s | %s |\n",
				label, rate, name, fmtInt(int64(math.Round(r.sentRate))), fmtPercent(r.okCount, r.requests),
				fmtDur(r.p50), fmtDur(r.p99), fmtDur(r.p999), fmtDur(r.max), p99Ratio(rs[j], rs[0]), fmtDur(r.lag),
				fmtMicros(r.srvCPU), fmtMicros(r.redisCPU), fmtMicros(r.genCPU), target, result)
		}
	}
	if n := notHeldRuns(fr); n > 0 {
		fmt.Fprintf(w, "\n%d of %d runs did not get their requests sent at the asked rate (vegeta's workers were all busy, or the harness got too little CPU: see send lag): "+
			"those rows measured a closed model and understate latency; lower -rate-alice / -rate-carol or rerun on a quieter machine.\n",
			n, len(cases)*len(fixedServers)*cfg.rounds)
	}
}

// notHeldRuns counts the single runs (of every round) that did not hold
// their rate.
func notHeldRuns(fr *fixedResults) int {
	n := 0
	for _, rs := range fr.rounds {
		for _, runs := range rs {
			for _, r := range runs {
				if !r.held() {
					n++
				}
			}
		}
	}
	return n
}

// fixedNote flags a baseline's run that was not an open model at the asked
// rate, or had errors.
func fixedNote(r fixedResult) string {
	var notes []string
	if !r.held() {
		notes = append(notes, fmt.Sprintf("rate not held: %s of %s req/s sent", fmtInt(int64(r.sentRate)), fmtInt(int64(r.rate))))
	}
	if r.okCount < r.requests {
		notes = append(notes, fmt.Sprintf("%d failed: %s", r.requests-r.okCount, strings.Join(r.errors, "; ")))
	}
	return strings.Join(notes, "; ")
}

func fixedRoundsNote(n int) string {
	if n == 1 {
		return "1 round"
	}
	return fmt.Sprintf("%d rounds, the order reversed every other round; quantiles, rates and CPU: median of the rounds, max: the largest; "+
		"p99 × bare and the targets: median of the per-round ratios", n)
}

// fmtPercent is ok of all as a percentage, "100 %" only when none failed.
func fmtPercent(ok, all int64) string {
	switch {
	case all == 0:
		return "–"
	case ok == all:
		return "100 %"
	default:
		return fmt.Sprintf("%.2f %%", math.Min(99.99, 100*float64(ok)/float64(all)))
	}
}

// runFixed measures every case on every fixed server at the case's rate,
// in rounds as the saturation runs.
func runFixed(ctx context.Context, cfg config, rds *privateRedis, all []*server, say func(string, ...any)) (*fixedResults, error) {
	fr := &fixedResults{cfg: cfg, started: time.Now()}
	fr.load[0] = loadAvg()
	var servers []*server
	for _, name := range fixedServers {
		i := slices.IndexFunc(all, func(s *server) bool { return s.name == name })
		if i < 0 {
			return nil, fmt.Errorf("fixed rate: no %s server", name)
		}
		servers = append(servers, all[i])
	}
	total := cfg.rounds * len(cases) * len(servers)
	eta := time.Duration(total) * (cfg.load.duration + cfg.warmup + time.Second)
	say("fixed rate: %d runs of %v (+%v warm-up) in %d rounds, alice at %d req/s, carol at %d req/s, about %v",
		total, cfg.load.duration, cfg.warmup, cfg.rounds, cfg.parts.rateAlice, cfg.parts.rateCarol, eta.Round(time.Second))
	fr.rounds = make([]fixedRounds, len(cases))
	for i := range fr.rounds {
		fr.rounds[i] = make(fixedRounds, len(servers))
	}
	for round := range cfg.rounds {
		for _, sl := range roundOrder(round, len(cases), len(servers)) {
			bc, s := cases[sl.c], servers[sl.s]
			r, err := measureFixed(ctx, cfg, rds, s, bc)
			if err != nil {
				return nil, fmt.Errorf("fixed rate, round %d, %s, %s: %w", round+1, bc.name, s.name, err)
			}
			say("fixed %d/%d  %-36s %-13s %5d req/s: sent %7.1f/s, %s 2xx, p50 %-9v p99 %-9v p99.9 %-9v max %-9v lag p99 %-9v CPU/req %v + %v redis + %v vegeta",
				round+1, cfg.rounds, bc.name, s.name, r.rate, r.sentRate, fmtPercent(r.okCount, r.requests),
				r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.p999.Round(time.Microsecond), r.max.Round(time.Microsecond),
				r.lag.Round(time.Microsecond), r.srvCPU, r.redisCPU, r.genCPU)
			fr.rounds[sl.c][sl.s] = append(fr.rounds[sl.c][sl.s], r)
		}
	}
	fr.elapsed = time.Since(fr.started)
	fr.load[1] = loadAvg()
	return fr, nil
}

// measureFixed checks that s answers bc, warms it up at the rate, and
// measures one attack of cfg.load.duration.
func measureFixed(ctx context.Context, cfg config, rds *privateRedis, s *server, bc benchCase) (fixedResult, error) {
	url, rate := s.url+bc.path, cfg.parts.rate(bc)
	if err := check(ctx, url, s.auth[bc.user], bc.want); err != nil {
		return fixedResult{}, err
	}
	client, closeIdle := attackClient(cfg.parts.maxWorkers)
	defer closeIdle()
	at := attackSpec{url: url, headers: s.auth[bc.user], rate: rate, maxWorkers: cfg.parts.maxWorkers}
	if cfg.warmup > 0 {
		at.duration = cfg.warmup
		if _, err := attack(ctx, client, at); err != nil {
			return fixedResult{}, err
		}
	}
	s.child.truncateLog()
	s0, err0 := s.child.cpuTime()
	r0, err1 := rds.child.cpuTime()
	g0, err2 := selfCPU()
	at.duration = cfg.load.duration
	samples, err := attack(ctx, client, at)
	if err != nil {
		return fixedResult{}, err
	}
	s1, err3 := s.child.cpuTime()
	r1, err4 := rds.child.cpuTime()
	g1, err5 := selfCPU()
	if err := cmp.Or(err0, err1, err2, err3, err4, err5); err != nil {
		return fixedResult{}, err
	}
	if err := s.child.failed(); err != nil {
		return fixedResult{}, err
	}
	s.child.truncateLog()
	r := summarize(samples, rate)
	if n := time.Duration(r.requests); n > 0 {
		r.srvCPU, r.redisCPU, r.genCPU = (s1-s0)/n, (r1-r0)/n, (g1-g0)/n
	}
	return r, nil
}

// attackSpec is one vegeta attack.
type attackSpec struct {
	url        string
	headers    []string // "Name: value"
	rate       int      // req/s
	duration   time.Duration
	maxWorkers int
}

// attackClient is the HTTP client of the attacks on one (case, server):
// shared by the warm-up and the measured attack, so that the measured one
// starts on warm connections. Connections are kept alive and reused (as a
// browser's are), as many kept idle as there can be requests in flight, so
// that a burst does not end in closing and redialing; no gzip, as with wrk.
func attackClient(maxInFlight int) (*http.Client, func()) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        maxInFlight,
		MaxIdleConnsPerHost: maxInFlight,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, tr.CloseIdleConnections
}

// attack sends GET url at a fixed rate for the duration and returns every
// request's sample. vegeta starts more workers whenever all are busy (up to
// maxWorkers), so that a slow answer does not hold back the next request.
func attack(ctx context.Context, client *http.Client, at attackSpec) ([]sample, error) {
	hdr := http.Header{}
	for _, h := range at.headers {
		k, v, ok := strings.Cut(h, ": ")
		if !ok {
			return nil, fmt.Errorf("header %q: want \"Name: value\"", h)
		}
		hdr.Add(k, v)
	}
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: at.url, Header: hdr})
	atk := vegeta.NewAttacker(
		vegeta.Client(client),
		// Enough to start with for ~10 ms answers; more on demand.
		vegeta.Workers(uint64(min(at.maxWorkers, max(8, at.rate/100)))),
		vegeta.MaxWorkers(uint64(at.maxWorkers)),
		vegeta.MaxBody(0), // read and dropped: the check before the run looked at the body
	)
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	rate := vegeta.Rate{Freq: at.rate, Per: time.Second}
	samples := make([]sample, 0, int(float64(at.rate)*at.duration.Seconds())+16)
	var m vegeta.Metrics
	for res := range atk.Attack(targeter, rate, at.duration, "") {
		m.Add(res)
		s := sample{seq: res.Seq, sent: res.Timestamp, latency: res.Latency, ok: res.Code >= 200 && res.Code < 300}
		if !s.ok {
			s.err = cmp.Or(res.Error, fmt.Sprintf("status %d", res.Code))
		}
		samples = append(samples, s)
	}
	m.Close()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// Every request failing is a broken setup (wrong address, no session),
	// not a measurement.
	if m.Requests > 0 && m.Success == 0 {
		return nil, fmt.Errorf("vegeta %s: every request failed (%s)", at.url, strings.Join(m.Errors, "; "))
	}
	return samples, nil
}

// selfCPU is the CPU time (user + system) the harness process has used:
// vegeta runs in it.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
