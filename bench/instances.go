package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
)

// The two-instance part (issue 11, part 5): two profilecache processes on
// the one Redis, as a deployment scales out. It measures
//   - saturation throughput of one instance against two sharing the load
//     (wrk split over both), with Redis's CPU time per request from INFO
//     cpu: a hot read is served from each instance's client-side cache;
//   - what one write costs Redis, with one and with two instances caching
//     the user's keys: a profile refresh (a new generation written, the old
//     one deleted), the invalidation messages Redis sends for it (tracked
//     (key, client) pairs it drops, and bytes), and the reads that fetch the
//     keys again on every instance afterwards;
//   - how much Redis memory its tracking table takes per tracked key and per
//     further client tracking it.
// docs/scale.md "More instances" turns these into a model for 10 and 100
// instances.

// instCase is the case the instances part drives to saturation.
var instCase = cases[0] // GET /api/me, alice

// instRun is one saturation run on n instances (the wrk runs summed).
type instRun struct {
	n          int
	requests   int64
	reqPerSec  float64
	p99        time.Duration // the worst of the wrk runs
	errs       int64         // non-2xx and socket errors
	cmdsPerReq float64
	// CPU per request: every instance together, and redis-server (from
	// INFO cpu, µs resolution).
	srvCPU, redisCPU      time.Duration
	trackKeys, trackItems int64 // Redis's tracking table after the run
}

// writeRun is what one profile refresh costs Redis with n instances caching
// the user's keys, averaged over the refreshes.
type writeRun struct {
	n, writes int
	cmds      float64       // Redis commands of the refresh
	cpu       time.Duration // Redis CPU of the refresh
	dropped   float64       // tracked (key, client) pairs dropped: invalidation messages sent
	outBytes  float64       // bytes Redis sent during the refresh: its replies and the invalidations
	// The reads right after, on every instance: the cache misses the
	// invalidations caused.
	rereadCmds float64
	rereadCPU  time.Duration
}

// trackingCost is Redis memory per tracked key (one client tracking it) and
// per further client tracking the same key, and what a cache miss costs
// Redis when many are pipelined (the sequential misses after a refresh pay
// a round trip each).
type trackingCost struct {
	keys            int
	perKey, perItem float64 // bytes
	missCmds        float64 // Redis commands per key read through the cache
	missCPU         time.Duration
}

type instResults struct {
	cfg      config
	one, two []instRun // per round
	writes   []writeRun
	tracking trackingCost
	started  time.Time
	elapsed  time.Duration
	load     [2]string
}

// redisSnap is what the instances part reads from INFO.
type redisSnap struct {
	cpu                   time.Duration // used_cpu_sys + used_cpu_user
	commands              int64         // total_commands_processed
	netOut                int64         // total_net_output_bytes
	usedMemory            int64
	trackKeys, trackItems int64 // tracking_total_keys, tracking_total_items
}

// parseSnap reads a redisSnap from the text of INFO stats, cpu and memory.
func parseSnap(info string) (redisSnap, error) {
	var s redisSnap
	var sys, user float64
	seen := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "used_cpu_sys":
			sys, err = strconv.ParseFloat(v, 64)
		case "used_cpu_user":
			user, err = strconv.ParseFloat(v, 64)
		case "total_commands_processed":
			s.commands, err = strconv.ParseInt(v, 10, 64)
		case "total_net_output_bytes":
			s.netOut, err = strconv.ParseInt(v, 10, 64)
		case "used_memory":
			s.usedMemory, err = strconv.ParseInt(v, 10, 64)
		case "tracking_total_keys":
			s.trackKeys, err = strconv.ParseInt(v, 10, 64)
		case "tracking_total_items":
			s.trackItems, err = strconv.ParseInt(v, 10, 64)
		default:
			continue
		}
		if err != nil {
			return s, fmt.Errorf("INFO %s: %w", k, err)
		}
		seen++
	}
	if seen != 7 {
		return s, fmt.Errorf("INFO: %d of the 7 fields wanted (stats, cpu, memory sections?)", seen)
	}
	s.cpu = time.Duration((sys + user) * float64(time.Second))
	return s, nil
}

func (r *privateRedis) snap(ctx context.Context) (redisSnap, error) {
	info, err := r.rdb.Info(ctx, "stats", "cpu", "memory").Result()
	if err != nil {
		return redisSnap{}, err
	}
	return parseSnap(info)
}

// sub is s - o, field by field.
func (s redisSnap) sub(o redisSnap) redisSnap {
	return redisSnap{
		cpu: s.cpu - o.cpu, commands: s.commands - o.commands, netOut: s.netOut - o.netOut,
		usedMemory: s.usedMemory - o.usedMemory, trackKeys: s.trackKeys - o.trackKeys, trackItems: s.trackItems - o.trackItems,
	}
}

// runInstances starts two profilecache instances on the harness's Redis,
// measures one against two at saturation, then what a refresh and Redis's
// tracking table cost.
func runInstances(ctx context.Context, cfg config, p *procs, rds *privateRedis, ours string, say func(string, ...any)) (*instResults, error) {
	ir := &instResults{cfg: cfg, started: time.Now()}
	ir.load[0] = loadAvg()
	inst, err := startInstances(ctx, cfg, p, rds, ours)
	if err != nil {
		return nil, err
	}
	total := 2 * cfg.rounds
	say("instances: %d runs of %v (+%v warm-up), one instance against two, %s; then refreshes", total, cfg.load.duration, cfg.warmup, instCase.name)
	if err := instanceRounds(ctx, cfg, rds, inst, ir, say); err != nil {
		return nil, err
	}
	for _, n := range []int{1, 2} {
		w, err := measureWrites(ctx, rds, inst[:n], "alice", 20)
		if err != nil {
			return nil, fmt.Errorf("instances, refreshes with %d instance(s): %w", n, err)
		}
		say("refresh with %d instance(s) caching: %.0f redis cmds, %v redis CPU, %.1f invalidations, %.0f bytes out; reads after: %.1f cmds, %v",
			n, w.cmds, w.cpu, w.dropped, w.outBytes, w.rereadCmds, w.rereadCPU)
		ir.writes = append(ir.writes, w)
	}
	tc, err := measureTracking(ctx, rds, profile.DemoUserID("carol@example.com").String(), 5000)
	if err != nil {
		return nil, fmt.Errorf("instances, tracking table: %w", err)
	}
	ir.tracking = tc
	ir.elapsed = time.Since(ir.started)
	ir.load[1] = loadAvg()
	return ir, nil
}

// startInstances starts two profilecache instances from ours and logs
// alice and carol in on both.
func startInstances(ctx context.Context, cfg config, p *procs, rds *privateRedis, ours string) ([]*server, error) {
	var inst []*server
	for i := 1; i <= 2; i++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("profilecache-%d", i)
		// Refreshes one after the other, not 429.
		c, err := p.start(name, ours, nil, append(oursEnv(cfg, addr, rds.addr), "REFRESH_COOLDOWN=0"))
		if err != nil {
			return nil, err
		}
		// Named as the one profilecache server (login wants a bearer token
		// from it); the child and its log carry the instance's own name.
		s := &server{name: srvOurs, url: "http://" + addr, child: c, auth: map[string][]string{}}
		if err := waitHTTP(ctx, c, s.url+"/healthz"); err != nil {
			return nil, err
		}
		inst = append(inst, s)
	}
	// One login; its token works on both (one SESSION_SECRET, one Redis).
	// carol's login loads her 10,000 orders, for the tracking-table figures.
	for _, u := range []string{"alice", "carol"} {
		h, err := login(ctx, inst[0], u)
		if err != nil {
			return nil, err
		}
		for _, s := range inst {
			s.auth[u] = h
		}
	}
	return inst, nil
}

// instanceRounds measures one instance against two at saturation,
// cfg.rounds times in alternating order, into ir.
func instanceRounds(ctx context.Context, cfg config, rds *privateRedis, inst []*server, ir *instResults, say func(string, ...any)) error {
	for round := range cfg.rounds {
		order := []int{1, 2}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, n := range order {
			r, err := measureInstances(ctx, cfg, rds, inst[:n], instCase)
			if err != nil {
				return fmt.Errorf("instances, round %d, %d instance(s): %w", round+1, n, err)
			}
			say("instances %d/%d  %d instance(s) %9.0f req/s  p99 %-9v %.3f redis cmds/req  CPU/req %v instances + %v redis  tracking %d keys, %d items",
				round+1, cfg.rounds, n, r.reqPerSec, r.p99.Round(time.Microsecond), r.cmdsPerReq, r.srvCPU, r.redisCPU, r.trackKeys, r.trackItems)
			if n == 1 {
				ir.one = append(ir.one, r)
			} else {
				ir.two = append(ir.two, r)
			}
		}
	}
	return nil
}

// measureInstances drives bc on every instance of inst at once, splitting
// wrk's threads and connections evenly, and sums what they served.
func measureInstances(ctx context.Context, cfg config, rds *privateRedis, inst []*server, bc benchCase) (instRun, error) {
	n := len(inst)
	l := load{threads: max(1, cfg.load.threads/n), conns: max(1, cfg.load.conns/n), duration: cfg.load.duration}
	for _, s := range inst {
		if err := check(ctx, s.url+bc.path, s.auth[bc.user], bc.want); err != nil {
			return instRun{}, err
		}
	}
	if cfg.warmup >= time.Second {
		wl := l
		wl.duration = cfg.warmup
		if _, err := wrkAll(ctx, inst, bc, wl); err != nil {
			return instRun{}, err
		}
	}
	for _, s := range inst {
		s.child.truncateLog()
	}
	r0, err := rds.snap(ctx)
	if err != nil {
		return instRun{}, err
	}
	c0, err := instancesCPU(inst)
	if err != nil {
		return instRun{}, err
	}
	ws, err := wrkAll(ctx, inst, bc, l)
	if err != nil {
		return instRun{}, err
	}
	c1, err := instancesCPU(inst)
	if err != nil {
		return instRun{}, err
	}
	r1, err := rds.snap(ctx)
	if err != nil {
		return instRun{}, err
	}
	for _, s := range inst {
		if err := s.child.failed(); err != nil {
			return instRun{}, err
		}
		s.child.truncateLog()
	}
	return sumInstRun(n, ws, r0, r1, c1-c0), nil
}

// wrkAll runs wrk with l on every instance of inst at once.
func wrkAll(ctx context.Context, inst []*server, bc benchCase, l load) ([]wrkResult, error) {
	out := make([]wrkResult, len(inst))
	errs := make([]error, len(inst))
	var wg sync.WaitGroup
	for i, s := range inst {
		wg.Go(func() { out[i], errs[i] = runWrk(ctx, l, s.url+bc.path, s.auth[bc.user]) })
	}
	wg.Wait()
	return out, cmp.Or(errs...)
}

// instancesCPU is the CPU time every instance of inst has used, summed.
func instancesCPU(inst []*server) (time.Duration, error) {
	var sum time.Duration
	for _, s := range inst {
		d, err := s.child.cpuTime()
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// sumInstRun sums the wrk runs ws on n instances, with Redis's INFO before
// (r0) and after (r1) and the instances' CPU time meanwhile (cpu).
func sumInstRun(n int, ws []wrkResult, r0, r1 redisSnap, cpu time.Duration) instRun {
	run := instRun{n: n, trackKeys: r1.trackKeys, trackItems: r1.trackItems}
	for _, w := range ws {
		run.requests += w.requests
		run.reqPerSec += w.reqPerSec
		run.p99 = max(run.p99, w.p99)
		run.errs += w.non2xx + w.sockErrs
	}
	if run.requests > 0 {
		d := r1.sub(r0)
		run.cmdsPerReq = float64(d.commands-1) / float64(run.requests) // minus the first INFO
		run.redisCPU = d.cpu / time.Duration(run.requests)
		run.srvCPU = cpu / time.Duration(run.requests)
	}
	return run
}

// measureWrites refreshes user's profile writes+1 times through the first
// instance, each time after every instance of inst has read the user's
// basic data and first orders page (so that all of them cache those keys),
// and measures the refresh and the reads after it. The first refresh is
// not counted: it also drops keys that the harness's other servers cached.
func measureWrites(ctx context.Context, rds *privateRedis, inst []*server, user string, writes int) (writeRun, error) {
	w := writeRun{n: len(inst), writes: writes}
	over, err := infoOverhead(ctx, rds)
	if err != nil {
		return w, err
	}
	var sum, reread redisSnap
	var dropped int64
	if err := readCached(ctx, inst, user); err != nil {
		return w, err
	}
	for i := range writes + 1 {
		a, err := rds.snap(ctx)
		if err != nil {
			return w, err
		}
		if err := refresh(ctx, inst[0], user); err != nil {
			return w, err
		}
		b, err := rds.snap(ctx)
		if err != nil {
			return w, err
		}
		if err := readCached(ctx, inst, user); err != nil {
			return w, err
		}
		c, err := rds.snap(ctx)
		if err != nil {
			return w, err
		}
		if i == 0 {
			continue
		}
		sum = addSnap(sum, b.sub(a).sub(over))
		reread = addSnap(reread, c.sub(b).sub(over))
		dropped += a.trackItems - b.trackItems
	}
	k := float64(writes)
	w.cmds = float64(sum.commands) / k
	w.cpu = sum.cpu / time.Duration(writes)
	w.outBytes = float64(sum.netOut) / k
	w.dropped = float64(dropped) / k
	w.rereadCmds = float64(reread.commands) / k
	w.rereadCPU = reread.cpu / time.Duration(writes)
	return w, nil
}

// infoOverhead is what two INFO calls in a row cost, to take off every
// measured pair: the least of five tries.
func infoOverhead(ctx context.Context, rds *privateRedis) (redisSnap, error) {
	var over redisSnap
	for i := range 5 {
		a, err := rds.snap(ctx)
		if err != nil {
			return over, err
		}
		b, err := rds.snap(ctx)
		if err != nil {
			return over, err
		}
		d := b.sub(a)
		if i == 0 || d.cpu < over.cpu {
			over.cpu = d.cpu
		}
		if i == 0 || d.netOut < over.netOut {
			over.netOut = d.netOut
		}
	}
	over.commands = 1
	return over, nil
}

// readCached reads user's basic data and first orders page on every
// instance of inst, so that all of them cache those keys.
func readCached(ctx context.Context, inst []*server, user string) error {
	for _, s := range inst {
		for _, path := range []string{"/api/me", "/api/me/orders?offset=0&limit=20"} {
			if err := check(ctx, s.url+path, s.auth[user], `"`); err != nil {
				return err
			}
		}
	}
	return nil
}

// addSnap is a + b, field by field.
func addSnap(a, b redisSnap) redisSnap {
	return redisSnap{
		cpu: a.cpu + b.cpu, commands: a.commands + b.commands, netOut: a.netOut + b.netOut,
		usedMemory: a.usedMemory + b.usedMemory, trackKeys: a.trackKeys + b.trackKeys, trackItems: a.trackItems + b.trackItems,
	}
}

// refresh asks s to reload user's profile now: POST /api/me/refresh, 204.
func refresh(ctx context.Context, s *server, user string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/api/me/refresh", nil)
	if err != nil {
		return err
	}
	for _, h := range s.auth[user] {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("POST %s/api/me/refresh: %d %.300s", s.url, resp.StatusCode, b)
	}
	return nil
}

// measureTracking reads up to n of user's order hashes through client-side
// caching with one rueidis client, then with a second, and returns how much
// Redis's used_memory grew per tracked key and per further client.
func measureTracking(ctx context.Context, rds *privateRedis, uid string, n int) (trackingCost, error) {
	var keys []string
	it := rds.rdb.Scan(ctx, 0, "pc:{u:"+uid+"}:*:order:*", 1000).Iterator()
	for it.Next(ctx) && len(keys) < n {
		keys = append(keys, it.Val())
	}
	if err := it.Err(); err != nil {
		return trackingCost{}, err
	}
	if len(keys) < 100 {
		return trackingCost{}, fmt.Errorf("only %d order hashes of %s in Redis", len(keys), uid)
	}
	m1, c1, err := trackKeys(ctx, rds, keys)
	if err != nil {
		return trackingCost{}, err
	}
	defer c1.Close()
	m2, c2, err := trackKeys(ctx, rds, keys)
	if err != nil {
		return trackingCost{}, err
	}
	defer c2.Close()
	k := float64(len(keys))
	return trackingCost{
		keys: len(keys), perKey: float64(m1.usedMemory) / k, perItem: float64(m2.usedMemory) / k,
		missCmds: float64(m1.commands-1) / k, missCPU: m1.cpu / time.Duration(len(keys)),
	}, nil
}

// trackKeys reads keys through client-side caching with a new client, and
// returns how Redis changed meanwhile and the client, which keeps them
// tracked until it is closed.
func trackKeys(ctx context.Context, rds *privateRedis, keys []string) (redisSnap, rueidis.Client, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rds.addr}})
	if err != nil {
		return redisSnap{}, nil, err
	}
	before, err := rds.snap(ctx)
	if err != nil {
		c.Close()
		return redisSnap{}, nil, err
	}
	for chunk := range slices.Chunk(keys, 500) {
		cmds := make([]rueidis.CacheableTTL, len(chunk))
		for i, k := range chunk {
			cmds[i] = rueidis.CT(c.B().Hgetall().Key(k).Cache(), time.Minute)
		}
		for _, r := range c.DoMultiCache(ctx, cmds...) {
			if err := r.Error(); err != nil {
				c.Close()
				return redisSnap{}, nil, err
			}
		}
	}
	after, err := rds.snap(ctx)
	if err != nil {
		c.Close()
		return redisSnap{}, nil, err
	}
	if got := after.trackItems - before.trackItems; got < int64(len(keys)) {
		c.Close()
		return redisSnap{}, nil, fmt.Errorf("tracking items grew by %d for %d keys read", got, len(keys))
	}
	return after.sub(before), c, nil
}

// instRatio is the median over the rounds of two instances' req/s over
// one's, each ratio between runs of one round.
func instRatio(one, two []instRun) float64 {
	n := min(len(one), len(two))
	xs := make([]float64, n)
	for k := range n {
		xs[k] = two[k].reqPerSec / one[k].reqPerSec
	}
	return median(xs)
}

// aggregateInst is the median of the rounds of one configuration; errors
// summed.
func aggregateInst(rs []instRun) instRun {
	var out instRun
	if len(rs) == 0 {
		return out
	}
	out.n = rs[0].n
	med := func(f func(instRun) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		return median(xs)
	}
	for _, r := range rs {
		out.requests += r.requests
		out.errs += r.errs
		out.trackKeys, out.trackItems = r.trackKeys, r.trackItems // the last round's
	}
	out.reqPerSec = med(func(r instRun) float64 { return r.reqPerSec })
	out.cmdsPerReq = med(func(r instRun) float64 { return r.cmdsPerReq })
	out.p99 = time.Duration(med(func(r instRun) float64 { return float64(r.p99) }))
	out.srvCPU = time.Duration(med(func(r instRun) float64 { return float64(r.srvCPU) }))
	out.redisCPU = time.Duration(med(func(r instRun) float64 { return float64(r.redisCPU) }))
	return out
}

func printInstancesTable(w io.Writer, ir *instResults) {
	cfg := ir.cfg
	fmt.Fprintf(w, "\nOne vs two profilecache instances on one Redis, %s: wrk -t%d -c%d in all (split evenly over the instances), %v warm-up + %v; %s; %s; load average %s before, %s after; %v in all\n\n",
		instCase.name, cfg.load.threads, cfg.load.conns, cfg.warmup, cfg.load.duration, instRoundsNote(cfg.rounds),
		ir.started.Format("2006-01-02 15:04"), ir.load[0], ir.load[1], ir.elapsed.Round(time.Second))
	fmt.Fprintln(w, "| instances | req/s (sum) | × one | p99 (worst) | Redis cmds/req | Redis CPU µs/req (INFO cpu) | instances' CPU µs/req | Redis tracking table after: keys, items | errors |")
	fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, rs := range [][]instRun{ir.one, ir.two} {
		r := aggregateInst(rs)
		x := 1.0
		if r.n == 2 {
			x = instRatio(ir.one, ir.two)
		}
		fmt.Fprintf(w, "| %d | %s | %.2f | %s | %.4f | %.3f | %s | %s, %s | %d |\n", r.n, fmtInt(int64(r.reqPerSec)), x, fmtDur(r.p99),
			r.cmdsPerReq, float64(r.redisCPU)/float64(time.Microsecond), fmtMicros(r.srvCPU), fmtInt(r.trackKeys), fmtInt(r.trackItems), r.errs)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| one profile refresh (alice: 25 orders, 6 invoices, 3 inquiries) | Redis cmds | Redis CPU µs | invalidations (tracked pairs dropped) | bytes Redis sent | then reading /api/me + orders page on every instance: Redis cmds, CPU µs |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|")
	for _, wr := range ir.writes {
		fmt.Fprintf(w, "| %s caching, mean of %d | %.0f | %s | %.1f | %s | %.1f, %s |\n", plural(wr.n, "instance"), wr.writes, wr.cmds, fmtMicros(wr.cpu),
			wr.dropped, fmtInt(int64(wr.outBytes)), wr.rereadCmds, fmtMicros(wr.rereadCPU))
	}
	t := ir.tracking
	fmt.Fprintf(w, "\nRedis tracking table (used_memory growth while rueidis clients read %s of carol's order hashes through the cache, 500 a batch): %.0f bytes per tracked key, %.0f bytes per further client tracking it; "+
		"each key read cost Redis %.1f commands and %.1f µs of CPU\n",
		fmtInt(int64(t.keys)), t.perKey, t.perItem, t.missCmds, float64(t.missCPU)/float64(time.Microsecond))
}

// plural is "1 instance", "2 instances".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func instRoundsNote(n int) string {
	if n == 1 {
		return "1 round"
	}
	return fmt.Sprintf("%d rounds, one and two instances in turn, the order reversed every other round; medians of the rounds, × one the median of the per-round ratios", n)
}
