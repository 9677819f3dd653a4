package main

// Stalls (issue 11): one Redis serves every user, and it runs one command,
// script or MULTI/EXEC at a time, so whatever one call costs, everyone
// waits for. This part of the harness logs carol (10,000 orders) in ten
// times while 64 clients read alice's and bob's pages through the real
// binary, and reports what Redis itself saw: the longest stall its latency
// monitor recorded, the slowest SLOWLOG entry, and the other users' read
// latencies during the logins.
//
// It is self-contained: it starts its own profilecache processes on the
// harness's redis-server, one per tree measured (-stalls-baseline adds a
// "before" tree, built the same way, measured in the same run).

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/profilecache/profilecache/profile"
)

// onlyStalls is this part's name, for -only and its own switch -stalls.
const onlyStalls = "stalls"

// Settings of the measurement.
const (
	stallThresholdMS = 1 // latency-monitor-threshold, ms
	slowlogMicros    = 1000
	stallTargetMS    = 2                    // issue 11: the longest stall under 2 ms
	stallProbes      = 4                    // goroutines reading alice's meta straight from Redis,
	stallProbeEvery  = 2 * time.Millisecond // each this often
	// stallRedisNice is the priority the private redis-server gets for the
	// measurement, if the harness may set it: on a shared machine the
	// latency monitor otherwise records every time the OS pauses Redis for
	// another process, which says nothing about the commands.
	stallRedisNice = -20
	// stallReaderNice is the harness's own priority meanwhile: above the
	// server under test, so that the readers measure its answers rather
	// than their own wait for a CPU, and below Redis.
	stallReaderNice = -10
	stallSettle     = 500 * time.Millisecond
)

// stallRun is one tree's measurement.
type stallRun struct {
	name string // "before" or "after"
	root string
	// Redis's own view.
	events  []latencyEvent // LATENCY LATEST after the logins
	history []latencySample
	slowest []slowEntry // SLOWLOG, slowest first
	slowlog int         // SLOWLOG entries at or above slowlogMicros
	// Ours.
	logins  []time.Duration // carol's, in order
	during  latencies       // other users' HTTP reads that started during a login
	outside latencies       // ... and between the logins or around them
	probes  latencies       // uncached reads of alice's meta, during the logins
	errors  int             // non-200 answers and failed requests
	nice    string          // the priority redis-server ran at
	// readerNice is the priority the harness's readers ran at.
	readerNice string
	// rounds are each round's longest stall and slowest SLOWLOG entry,
	// once merge has pooled the rounds.
	rounds []roundMax
}

// roundMax is what one round saw at worst.
type roundMax struct {
	longest time.Duration
	event   string
	slowest time.Duration
	fast    time.Duration // the longest fast-command event
}

// fastCommand is the latency monitor's event for O(1) and O(log N)
// commands (GET, HGET, ...). Such a command cannot stall Redis by its own
// work: when one takes milliseconds, the machine paused Redis. It measures
// the noise, and is left out of the stalls.
const fastCommand = "fast-command"

// latencyEvent is one line of LATENCY LATEST.
type latencyEvent struct {
	name        string
	latest, max time.Duration
}

// latencySample is one entry of LATENCY HISTORY command.
type latencySample struct {
	at      time.Time
	latency time.Duration
}

// slowEntry is one SLOWLOG entry.
type slowEntry struct {
	dur  time.Duration
	args []string
}

// longest is the longest stall the latency monitor recorded but for fast
// commands, and its event; zero when it recorded none (every call under
// the threshold). Over
// several rounds it is the median of the rounds' longest stalls: one
// round's worst can be the machine's doing (a process that took the CPU
// from Redis), the median of several is the commands'.
func (r stallRun) longest() (time.Duration, string) {
	if len(r.rounds) > 0 {
		m := medianRound(r.rounds, func(x roundMax) time.Duration { return x.longest })
		return m.longest, m.event
	}
	return r.roundLongest()
}

// slowestDur is the slowest SLOWLOG entry, or the median of the rounds'.
func slowestDur(r stallRun) time.Duration {
	if len(r.rounds) > 0 {
		return medianRound(r.rounds, func(x roundMax) time.Duration { return x.slowest }).slowest
	}
	if len(r.slowest) == 0 {
		return 0
	}
	return r.slowest[0].dur
}

// medianRound is the round with the median by (the lower of the middle
// two for an even count).
func medianRound(rs []roundMax, by func(roundMax) time.Duration) roundMax {
	s := slices.Clone(rs)
	slices.SortStableFunc(s, func(a, b roundMax) int { return cmp.Compare(by(a), by(b)) })
	return s[(len(s)-1)/2]
}

// merge pools the rounds of one tree: latencies, logins, errors and the
// SLOWLOG, and keeps each round's worst.
func merge(rounds []stallRun) stallRun {
	out := stallRun{name: rounds[0].name, root: rounds[0].root, nice: rounds[0].nice, readerNice: rounds[0].readerNice}
	for _, r := range rounds {
		d, ev := r.roundLongest()
		rm := roundMax{longest: d, event: ev, fast: r.roundFast()}
		if len(r.slowest) > 0 {
			rm.slowest = r.slowest[0].dur
		}
		out.rounds = append(out.rounds, rm)
		out.history = append(out.history, r.history...)
		out.slowest = append(out.slowest, r.slowest...)
		out.slowlog += r.slowlog
		out.logins = append(out.logins, r.logins...)
		for _, l := range []struct{ to, from *latencies }{{&out.during, &r.during}, {&out.outside, &r.outside}, {&out.probes, &r.probes}} {
			l.to.starts, l.to.durs = append(l.to.starts, l.from.starts...), append(l.to.durs, l.from.durs...)
		}
		out.errors += r.errors
	}
	slices.SortStableFunc(out.slowest, func(a, b slowEntry) int { return cmp.Compare(b.dur, a.dur) })
	return out
}

// noise is the longest fast-command event, or the median of the rounds'.
func (r stallRun) noise() time.Duration {
	if len(r.rounds) > 0 {
		return medianRound(r.rounds, func(x roundMax) time.Duration { return x.fast }).fast
	}
	return r.roundFast()
}

func (r stallRun) roundFast() time.Duration {
	for _, e := range r.events {
		if e.name == fastCommand {
			return e.max
		}
	}
	return 0
}

// roundLongest is the longest stall of one round's LATENCY LATEST.
func (r stallRun) roundLongest() (time.Duration, string) {
	var d time.Duration
	name := ""
	for _, e := range r.events {
		if e.max > d && e.name != fastCommand {
			d, name = e.max, e.name
		}
	}
	return d, name
}

// latencies are request durations with their start times.
type latencies struct {
	starts []time.Time
	durs   []time.Duration
}

func (l *latencies) add(start time.Time, d time.Duration) {
	l.starts = append(l.starts, start)
	l.durs = append(l.durs, d)
}

// split divides l into the requests that started inside one of the
// intervals and the others.
func (l latencies) split(intervals [][2]time.Time) (in, out latencies) {
	for i, s := range l.starts {
		inside := slices.ContainsFunc(intervals, func(iv [2]time.Time) bool { return !s.Before(iv[0]) && s.Before(iv[1]) })
		if inside {
			in.add(s, l.durs[i])
		} else {
			out.add(s, l.durs[i])
		}
	}
	return in, out
}

// quantile is the q-quantile (0..1) of the durations, nearest rank; 0
// without any.
func (l latencies) quantile(q float64) time.Duration {
	if len(l.durs) == 0 {
		return 0
	}
	s := slices.Clone(l.durs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// runStalls measures the tree at ours (already built) and, with
// -stalls-baseline, a tree built from that directory, on the harness's
// redis-server, and prints the table.
func runStalls(ctx context.Context, cfg config, p *procs, ours string, rds *privateRedis, stdout io.Writer, log func(string, ...any)) error {
	say := func(format string, a ...any) { log("stalls: "+format, a...) }
	type tree struct{ name, root, bin string }
	trees := []tree{{"after", cfg.root, ours}}
	if cfg.stallsBaseline != "" {
		bin := filepath.Join(p.dir, "profilecache-baseline")
		say("building ./cmd/profilecache in %s", cfg.stallsBaseline)
		if err := buildProfilecache(ctx, cfg.stallsBaseline, bin); err != nil {
			return err
		}
		trees = []tree{{"before", cfg.stallsBaseline, bin}, trees[0]}
	}
	rounds := make([][]stallRun, len(trees))
	for round := range cfg.stallRounds {
		order := make([]int, len(trees))
		for i := range order {
			order[i] = i
		}
		if round%2 == 1 { // a drift of the machine's speed weighs on both alike
			slices.Reverse(order)
		}
		for _, i := range order {
			t := trees[i]
			say("round %d/%d, %s (%s): %d clients read alice's and bob's pages while carol logs in %d times",
				round+1, cfg.stallRounds, t.name, t.root, cfg.stallReaders, cfg.logins)
			r, err := measureStalls(ctx, cfg, p, t.name, t.bin, rds)
			if err != nil {
				return fmt.Errorf("stalls, %s: %w", t.name, err)
			}
			r.root = t.root
			d, ev := r.longest()
			say("round %d/%d, %s: longest stall %v (%s), slowest SLOWLOG %v, reads during logins p99 %v", round+1, cfg.stallRounds,
				t.name, d, cmp.Or(ev, "none"), slowestDur(r), r.during.quantile(0.99))
			rounds[i] = append(rounds[i], r)
		}
	}
	runs := make([]stallRun, len(trees))
	for i := range trees {
		runs[i] = merge(rounds[i])
	}
	printStalls(stdout, cfg, runs)
	return nil
}

// measureStalls starts a profilecache from bin on the harness's Redis and
// runs the measurement against it.
func measureStalls(ctx context.Context, cfg config, p *procs, name, bin string, rds *privateRedis) (stallRun, error) {
	r := stallRun{name: name}
	if err := rds.flushAll(ctx); err != nil {
		return r, err
	}
	addr, err := freeAddr()
	if err != nil {
		return r, err
	}
	c, err := p.start("profilecache-stalls-"+name, bin, nil, oursEnv(cfg, addr, rds.addr))
	if err != nil {
		return r, err
	}
	defer c.stop()
	s := &server{name: srvOurs, url: "http://" + addr, child: c, auth: map[string][]string{}}
	aliceMeta, err := prepareStalls(ctx, s, rds)
	if err != nil {
		return r, err
	}
	r.nice, r.readerNice = stallPriorities(ctx, cfg, rds)
	defer renice(rds.child.cmd.Process.Pid, 0)
	defer reniceSelf(0)
	if err := resetStallMonitors(ctx, rds); err != nil {
		return r, err
	}
	if err := readDuringLogins(ctx, cfg, s, rds, aliceMeta, &r); err != nil {
		return r, err
	}
	if err := c.failed(); err != nil {
		return r, err
	}
	if err := collectStalls(ctx, rds, &r); err != nil {
		return r, err
	}
	return r, nil
}

// stallRead is a page the readers read, and what its answer holds.
type stallRead struct{ user, path, want string }

// stallReads are alice's and bob's pages, which the readers go round.
var stallReads = []stallRead{
	{"alice", "/api/me", "Ångström"},
	{"alice", "/api/me/orders?offset=0&limit=20", `"total":25`},
	{"bob", "/api/me", `"email"`},
	{"bob", "/api/me/orders?offset=0&limit=20", `"total":0`},
}

// prepareStalls waits for the server s, logs alice, bob and carol in,
// checks the readers' pages, and returns the key of alice's meta.
func prepareStalls(ctx context.Context, s *server, rds *privateRedis) (string, error) {
	if err := waitHTTP(ctx, s.child, s.url+"/healthz"); err != nil {
		return "", err
	}
	var err error
	for _, u := range []string{"alice", "bob"} {
		if s.auth[u], err = login(ctx, s, u); err != nil {
			return "", err
		}
	}
	// A first login of carol loads the scripts and her profile: the ten
	// measured ones each replace a generation, as a returning user does.
	if _, err := login(ctx, s, "carol"); err != nil {
		return "", err
	}
	for _, rd := range stallReads {
		if err := check(ctx, s.url+rd.path, s.auth[rd.user], rd.want); err != nil {
			return "", err
		}
	}
	aliceMeta := "pc:{u:" + profile.DemoUserID("alice@example.com").String() + "}:meta"
	if n, err := rds.rdb.Exists(ctx, aliceMeta).Result(); err != nil || n != 1 {
		return "", fmt.Errorf("alice's meta %s: exists %d, %v", aliceMeta, n, err)
	}
	return aliceMeta, nil
}

// stallPriorities raises redis-server's priority and the harness's own, as
// far as it may, and says what each runs at; the caller sets them back.
func stallPriorities(ctx context.Context, cfg config, rds *privateRedis) (redisNice, readerNice string) {
	redisNice = renice(rds.child.cmd.Process.Pid, stallRedisNice)
	if cfg.stallFIFO {
		redisNice = fifo(ctx, rds.child.cmd.Process.Pid)
	}
	// The readers too: starved of CPU by carol's login (bcrypt, 10,000
	// orders), they would measure their own wait for a CPU.
	return redisNice, reniceSelf(stallReaderNice)
}

// resetStallMonitors sets Redis's latency monitor and SLOWLOG for the
// measurement and empties them.
func resetStallMonitors(ctx context.Context, rds *privateRedis) error {
	for _, args := range [][]any{
		{"CONFIG", "SET", "latency-monitor-threshold", stallThresholdMS},
		{"CONFIG", "SET", "slowlog-log-slower-than", slowlogMicros},
		{"CONFIG", "SET", "slowlog-max-len", 10000},
		{"LATENCY", "RESET"},
		{"SLOWLOG", "RESET"},
	} {
		if err := rds.rdb.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("%v: %w", args, err)
		}
	}
	return nil
}

// readDuringLogins logs carol in cfg.logins times while the readers run,
// and records her logins and the readers' latencies, during the logins and
// outside them, in r.
func readDuringLogins(ctx context.Context, cfg config, s *server, rds *privateRedis, aliceMeta string, r *stallRun) error {
	// Readers: cfg.stallReaders HTTP clients over alice's and bob's pages,
	// and a few uncached reads of alice's meta straight from Redis, which
	// show a stall even where profilecache's client-side cache hides it.
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.stallReaders, MaxConnsPerHost: cfg.stallReaders}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var ss stallSamples
	var wg sync.WaitGroup
	t0 := time.Now()
	var every time.Duration // per reader; 0 back to back
	if cfg.stallRate > 0 {
		every = time.Second * time.Duration(cfg.stallReaders) / time.Duration(cfg.stallRate)
	}
	for i := range cfg.stallReaders {
		// Reader i starts at its own offset into the period.
		pc := pacer{start: t0.Add(every * time.Duration(i) / time.Duration(cfg.stallReaders)), every: every}
		wg.Go(func() { ss.read(rctx, hc, s, pc, i) })
	}
	for i := range stallProbes {
		pc := pacer{start: t0.Add(stallProbeEvery * time.Duration(i) / stallProbes), every: stallProbeEvery}
		wg.Go(func() { ss.probe(rctx, rds, aliceMeta, pc) })
	}
	time.Sleep(stallSettle)
	intervals, loginErr := carolLogins(ctx, cfg.logins, s, r)
	time.Sleep(stallSettle)
	stop()
	wg.Wait()
	r.errors += ss.errors
	if loginErr != nil {
		return loginErr
	}
	r.during, r.outside = ss.all.split(intervals)
	r.probes, _ = ss.probes.split(intervals)
	return nil
}

// stallSamples are the readers' and the probes' latencies, pooled.
type stallSamples struct {
	mu          sync.Mutex
	all, probes latencies
	errors      int // non-200 answers and failed requests
}

// read is reader i: it goes round stallReads, from the i-th on, at the
// times pc plans, until ctx ends.
func (ss *stallSamples) read(ctx context.Context, hc *http.Client, s *server, pc pacer, i int) {
	var mine latencies
	errs := 0
	for k := i; ctx.Err() == nil; k++ {
		rd := stallReads[k%len(stallReads)]
		start := pc.wait(ctx)
		ok := get(ctx, hc, s.url+rd.path, s.auth[rd.user])
		if ctx.Err() != nil {
			break
		}
		if !ok {
			errs++
			continue
		}
		mine.add(start, time.Since(start))
	}
	ss.mu.Lock()
	ss.all.starts, ss.all.durs = append(ss.all.starts, mine.starts...), append(ss.all.durs, mine.durs...)
	ss.errors += errs
	ss.mu.Unlock()
}

// probe reads alice's meta straight from Redis at the times pc plans,
// until ctx ends.
func (ss *stallSamples) probe(ctx context.Context, rds *privateRedis, aliceMeta string, pc pacer) {
	var mine latencies
	for ctx.Err() == nil {
		start := pc.wait(ctx)
		if err := rds.rdb.HGet(ctx, aliceMeta, "gen").Err(); err != nil {
			break
		}
		mine.add(start, time.Since(start))
	}
	ss.mu.Lock()
	ss.probes.starts, ss.probes.durs = append(ss.probes.starts, mine.starts...), append(ss.probes.durs, mine.durs...)
	ss.mu.Unlock()
}

// carolLogins logs carol in n times, one after the other, records each
// login's time in r.logins and returns when each ran.
func carolLogins(ctx context.Context, n int, s *server, r *stallRun) ([][2]time.Time, error) {
	var intervals [][2]time.Time
	for range n {
		start := time.Now()
		if _, err := login(ctx, s, "carol"); err != nil {
			return intervals, err
		}
		end := time.Now()
		intervals = append(intervals, [2]time.Time{start, end})
		r.logins = append(r.logins, end.Sub(start))
	}
	return intervals, nil
}

// collectStalls reads what Redis saw into r (latency monitor, SLOWLOG,
// slowest first) and turns the latency monitor off.
func collectStalls(ctx context.Context, rds *privateRedis, r *stallRun) error {
	var err error
	if r.events, err = latencyLatest(ctx, rds.rdb); err != nil {
		return err
	}
	if r.history, err = latencyHistory(ctx, rds.rdb); err != nil {
		return err
	}
	logs, err := rds.rdb.SlowLogGet(ctx, 10000).Result()
	if err != nil {
		return fmt.Errorf("SLOWLOG GET: %w", err)
	}
	for _, l := range logs {
		r.slowest = append(r.slowest, slowEntry{dur: l.Duration, args: l.Args})
	}
	slices.SortStableFunc(r.slowest, func(a, b slowEntry) int { return cmp.Compare(b.dur, a.dur) })
	r.slowlog = len(r.slowest)
	return rds.rdb.Do(ctx, "CONFIG", "SET", "latency-monitor-threshold", 0).Err()
}

// pacer plans requests at fixed times: start, start+every, ... With every
// 0 it plans each one now.
type pacer struct {
	start time.Time
	every time.Duration
	n     int
}

// wait sleeps until the next planned time and returns it. A request that
// could not start on time (the one before it was slow) is planned late all
// the same, so that its latency counts from when it should have been sent,
// as a user's would: no coordinated omission.
func (p *pacer) wait(ctx context.Context) time.Time {
	if p.every == 0 {
		return time.Now()
	}
	at := p.start.Add(time.Duration(p.n) * p.every)
	p.n++
	if d := time.Until(at); d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	return at
}

// get makes one request and reports whether it answered 200.
func get(ctx context.Context, hc *http.Client, url string, headers []string) bool {
	req, err := newGet(ctx, url, headers)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// latencyLatest reads LATENCY LATEST: per event, its latest and its
// longest latency since the reset.
func latencyLatest(ctx context.Context, rdb *redis.Client) ([]latencyEvent, error) {
	v, err := rdb.Do(ctx, "LATENCY", "LATEST").Slice()
	if err != nil {
		return nil, fmt.Errorf("LATENCY LATEST: %w", err)
	}
	return parseLatencyLatest(v)
}

func parseLatencyLatest(v []any) ([]latencyEvent, error) {
	var out []latencyEvent
	for _, e := range v {
		f, ok := e.([]any)
		if !ok || len(f) < 4 {
			return nil, fmt.Errorf("LATENCY LATEST: unexpected entry %v", e)
		}
		name, _ := f[0].(string)
		latest, ok1 := f[2].(int64)
		longest, ok2 := f[3].(int64)
		if name == "" || !ok1 || !ok2 {
			return nil, fmt.Errorf("LATENCY LATEST: unexpected entry %v", e)
		}
		out = append(out, latencyEvent{name: name, latest: time.Duration(latest) * time.Millisecond,
			max: time.Duration(longest) * time.Millisecond})
	}
	return out, nil
}

// latencyHistory reads LATENCY HISTORY command: the longest command
// latency of each second in which one passed the threshold.
func latencyHistory(ctx context.Context, rdb *redis.Client) ([]latencySample, error) {
	v, err := rdb.Do(ctx, "LATENCY", "HISTORY", "command").Slice()
	if err != nil {
		return nil, fmt.Errorf("LATENCY HISTORY command: %w", err)
	}
	return parseLatencyHistory(v)
}

func parseLatencyHistory(v []any) ([]latencySample, error) {
	var out []latencySample
	for _, e := range v {
		f, ok := e.([]any)
		if !ok || len(f) < 2 {
			return nil, fmt.Errorf("LATENCY HISTORY: unexpected entry %v", e)
		}
		ts, ok1 := f[0].(int64)
		ms, ok2 := f[1].(int64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("LATENCY HISTORY: unexpected entry %v", e)
		}
		out = append(out, latencySample{at: time.Unix(ts, 0), latency: time.Duration(ms) * time.Millisecond})
	}
	return out, nil
}

// describeSlow is a SLOWLOG entry as "17.93 ms EVAL <script…>".
func describeSlow(e slowEntry) string {
	var words []string
	for _, a := range e.args {
		a = strings.Join(strings.Fields(a), " ")
		if len(a) > 24 {
			a = a[:24] + "…"
		}
		words = append(words, a)
		if len(words) == 3 {
			break
		}
	}
	if len(e.args) > 3 {
		words = append(words, "…")
	}
	return fmtDur(e.dur) + " `" + strings.ReplaceAll(strings.Join(words, " "), "|", "/") + "`"
}

// printStalls prints one column per tree.
func printStalls(w io.Writer, cfg config, runs []stallRun) {
	printStallsHeader(w, cfg, runs)
	t := stallTable{w: w, runs: runs}
	t.redisRows()
	t.readRows()
	t.row("failed reads", func(r stallRun) string { return fmt.Sprint(r.errors) }, nil, "0", func(r stallRun) bool { return r.errors == 0 })
	for _, r := range runs {
		if r.root != "" {
			fmt.Fprintf(w, "\n%s: %s", r.name, r.root)
		}
	}
	fmt.Fprintln(w)
}

// printStallsHeader prints what was measured, how, and the table's head.
func printStallsHeader(w io.Writer, cfg config, runs []stallRun) {
	rate := "each as fast as it can"
	if cfg.stallRate > 0 {
		rate = fmt.Sprintf("%d reads/s in all, at planned times", cfg.stallRate)
	}
	nice := ""
	if len(runs) > 0 {
		nice = fmt.Sprintf("; redis-server at %s, the readers at %s", runs[0].nice, runs[0].readerNice)
	}
	fmt.Fprintf(w, "\nStalls (issue 11), %d round(s): carol logs in %d times while %d HTTP clients read alice's and bob's pages (%s) and %d uncached "+
		"HGETs read alice's meta (one each per %v); latency-monitor-threshold %d ms, slowlog-log-slower-than %d µs%s; %s; load average %s\n\n",
		cfg.stallRounds, cfg.logins, cfg.stallReaders, rate, stallProbes, stallProbeEvery, stallThresholdMS, slowlogMicros, nice,
		time.Now().Format("2006-01-02 15:04"), loadAvg())
	head := "| measure |"
	sep := "|---|"
	for _, r := range runs {
		head += " " + r.name + " |"
		sep += "--:|"
	}
	if len(runs) == 2 {
		head += " before / after |"
		sep += "--:|"
	}
	fmt.Fprintln(w, head+" target | result |")
	fmt.Fprintln(w, sep+"---|---|")
}

// stallTable prints the rows of the stalls table, one column per run.
type stallTable struct {
	w    io.Writer
	runs []stallRun
}

// row prints one measure: cell is a run's column; with two runs, ratio
// gives the before / after column (nil: none); ok, if not nil, judges the
// last run against target.
func (t stallTable) row(label string, cell func(stallRun) string, ratio func(stallRun) time.Duration, target string, ok func(stallRun) bool) {
	runs := t.runs
	line := "| " + label + " |"
	for _, r := range runs {
		line += " " + cell(r) + " |"
	}
	if len(runs) == 2 {
		x := ""
		if ratio != nil && ratio(runs[1]) > 0 {
			x = fmt.Sprintf("%.1f", float64(ratio(runs[0]))/float64(ratio(runs[1])))
		}
		line += " " + x + " |"
	}
	res := ""
	if ok != nil {
		res = verdict{ok: ok(runs[len(runs)-1]), got: cell(runs[len(runs)-1])}.result()
	}
	fmt.Fprintln(t.w, line+" "+target+" | "+res+" |")
}

// redisRows are what Redis saw: stalls, noise, SLOWLOG.
func (t stallTable) redisRows() {
	t.row("longest stall, Redis latency monitor (LATENCY LATEST but fast-command, ms resolution; median of the rounds)", func(r stallRun) string {
		d, ev := r.longest()
		rounds := roundsMS(r, func(x roundMax) time.Duration { return x.longest })
		if d == 0 {
			return fmt.Sprintf("none ≥ %d ms%s", stallThresholdMS, rounds)
		}
		return fmt.Sprintf("%s (%s%s)", fmtDur(d), ev, rounds)
	}, longestStall, fmt.Sprintf("< %d ms", stallTargetMS), func(r stallRun) bool { return longestStall(r) < stallTargetMS*time.Millisecond })
	t.row("the machine's noise: longest fast-command event (O(1) commands; LATENCY LATEST; median of the rounds)", func(r stallRun) string {
		return fmtDur(r.noise()) + roundsMS(r, func(x roundMax) time.Duration { return x.fast })
	}, nil, "", nil)
	t.row("seconds with a command stall ≥ 1 ms (LATENCY HISTORY command; all rounds)", func(r stallRun) string {
		return fmt.Sprint(len(r.history))
	}, nil, "", nil)
	t.row(fmt.Sprintf("slowest SLOWLOG entry (median of the rounds; entries ≥ %d µs in all)", slowlogMicros), func(r stallRun) string {
		rounds := roundsMS(r, func(x roundMax) time.Duration { return x.slowest })
		d := slowestDur(r)
		i := slices.IndexFunc(r.slowest, func(e slowEntry) bool { return e.dur <= d })
		if d == 0 || i < 0 {
			return fmt.Sprintf("none (%d in all%s)", r.slowlog, rounds)
		}
		return fmt.Sprintf("%s (%d in all%s)", describeSlow(r.slowest[i]), r.slowlog, rounds)
	}, slowestDur, "", nil)
}

// readRows are what the harness saw: carol's logins and the other users'
// reads.
func (t stallTable) readRows() {
	t.row("carol's login under this load, median", func(r stallRun) string { return fmtDur(median(r.logins)) },
		func(r stallRun) time.Duration { return median(r.logins) }, "", nil)
	q := func(l func(stallRun) latencies, p float64) func(stallRun) time.Duration {
		return func(r stallRun) time.Duration { return l(r).quantile(p) }
	}
	during := func(r stallRun) latencies { return r.during }
	outside := func(r stallRun) latencies { return r.outside }
	probes := func(r stallRun) latencies { return r.probes }
	for _, l := range []struct {
		label string
		get   func(stallRun) latencies
	}{
		{"alice's and bob's HTTP reads during carol's logins", during},
		{"... the same, outside the logins", outside},
		{"uncached HGET of alice's meta during carol's logins", probes},
	} {
		t.row(l.label+": p50 / p99 / max (count)", func(r stallRun) string {
			x := l.get(r)
			return fmt.Sprintf("%s / %s / %s (%s)", fmtDur(x.quantile(0.5)), fmtDur(x.quantile(0.99)), fmtDur(x.quantile(1)), fmtInt(int64(len(x.durs))))
		}, q(l.get, 0.99), "", nil)
	}
}

// longestStall is r's longest stall, without its event.
func longestStall(r stallRun) time.Duration { d, _ := r.longest(); return d }

// roundsMS lists each round's by, in ms, when r pooled several rounds.
func roundsMS(r stallRun, by func(roundMax) time.Duration) string {
	if len(r.rounds) < 2 {
		return ""
	}
	var ds []string
	for _, x := range r.rounds {
		ds = append(ds, fmtMS(by(x)))
	}
	return "; rounds: " + strings.Join(ds, ", ")
}

// fmtMS is d in whole milliseconds, or "<1" below one.
func fmtMS(d time.Duration) string {
	if d < time.Millisecond {
		return "<1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// renice sets the scheduling priority of the process pid's main thread,
// which is where Redis runs commands, and says what it runs at.
func renice(pid, nice int) string {
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, pid, nice); err != nil {
		return fmt.Sprintf("nice 0 (setting %d: %v)", nice, err)
	}
	return fmt.Sprintf("nice %d", nice)
}

// fifo puts every thread of process pid into SCHED_FIFO at the lowest
// real-time priority, and says what it runs at. Redis blocks in epoll when
// idle, so it cannot starve the machine; busy, no ordinary process can
// pause it mid-command. The process ends with the measurement.
func fifo(ctx context.Context, pid int) string {
	out, err := exec.CommandContext(ctx, "chrt", "--all-tasks", "--fifo", "--pid", "1", strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("nice %d (SCHED_FIFO: %v: %s)", stallRedisNice, err, strings.TrimSpace(string(out)))
	}
	return "SCHED_FIFO 1"
}

// reniceSelf sets the priority of every thread of the harness (Linux
// priorities are per thread; threads started later inherit it), as far as
// it may, and says what they run at.
func reniceSelf(nice int) string {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Sprintf("nice 0 (setting %d: %v)", nice, err)
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
				return fmt.Sprintf("nice 0 (setting %d: %v)", nice, err)
			}
		}
	}
	return fmt.Sprintf("nice %d", nice)
}

// stop ends the child: SIGTERM, then SIGKILL after a grace period.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(3 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}
