package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// verdict is one target of issue 3 and whether this run met it.
type verdict struct {
	target string
	ok     bool
	got    string
}

func (v verdict) result() string {
	if v.ok {
		return "PASS (" + v.got + ")"
	}
	return "MISS (" + v.got + ")"
}

// The targets of issue 3.
const (
	targetMeBare     = 0.6  // GET /api/me, alice: at least this much of bare
	targetMeCarol    = 0.95 // carol × bare within 5 % of alice × bare
	targetPageBare   = 0.4  // orders page, alice: at least this much of bare
	targetPageCarol  = 0.9  // carol's page at 5000 × bare within 10 % of alice's first × bare
	targetBytes      = 3.5  // carol's Redis bytes: at most this many blob sessions
	targetLoginRatio = 5.0  // login: at most this many blob logins
)

// caseVerdicts are the targets of case i for profilecache. The req/s
// targets use ratios taken per round (rpsRatio, relRatio); carol's are
// against alice's as both × bare, so that a run a neighbour slowed is set
// against the bare run next to it, not against alice's run minutes away.
func caseVerdicts(res *results, i int) []verdict {
	idx := func(name string) int { return slices.Index(res.servers, name) }
	ours, bare, blob := idx(srvOurs), idx(srvBare), idx(srvBlob)
	r := res.runs[i][ours]
	var vs []verdict
	atLeast := func(target float64, what string, x float64) {
		vs = append(vs, verdict{target: fmt.Sprintf("≥ %.2f × %s", target, what), ok: x >= target, got: fmt.Sprintf("%.2f", x)})
	}
	xBare := func(c int) float64 { return rpsRatio(res.rounds[c][ours], res.rounds[c][bare]) }
	vsAlice := func(c, alice int) float64 {
		return relRatio(res.rounds[c][ours], res.rounds[c][bare], res.rounds[alice][ours], res.rounds[alice][bare])
	}
	switch i {
	case 0:
		atLeast(targetMeBare, "bare", xBare(0))
	case 1:
		atLeast(targetMeCarol, "alice's (both × bare)", vsAlice(1, 0))
	case 2:
		atLeast(targetPageBare, "bare", xBare(2))
	case 3:
		atLeast(targetPageCarol, "alice's (both × bare)", vsAlice(3, 2))
	}
	bp := res.runs[i][blob].p99
	vs = append(vs, verdict{target: "p99 < blob's", ok: r.p99 < bp, got: fmtDur(r.p99) + " vs " + fmtDur(bp)})
	if r.non2xx > 0 || r.sockErrs > 0 {
		vs = append(vs, verdict{target: "no errors", ok: false, got: fmt.Sprintf("%d non-2xx, %d socket errors", r.non2xx, r.sockErrs)})
	}
	return vs
}

func printTable(w io.Writer, res *results) {
	cfg := res.cfg
	fmt.Fprintf(w, "wrk -t%d -c%d, %v warm-up + %v per case and server, cases interleaved; %s; %s; load average %s before, %s after; %v in all",
		cfg.load.threads, cfg.load.conns, cfg.warmup, cfg.load.duration, roundsNote(cfg.rounds), res.started.Format("2006-01-02 15:04"),
		res.load[0], res.load[1], res.elapsed.Round(time.Second))
	if len(cfg.oursEnv) > 0 {
		fmt.Fprintf(w, "; profilecache with %s", strings.Join(cfg.oursEnv, " "))
	}
	fmt.Fprint(w, "\n\n")
	printCases(w, res)
	printLogin(w, res)
}

// printCases is the table of the read cases: each server's throughput,
// latency and cost, and the verdicts on profilecache's.
func printCases(w io.Writer, res *results) {
	fmt.Fprintln(w, "| case | server | req/s | p50 | p99 | × bare | × blob | Redis cmds/req | CPU µs/req: server + Redis + wrk | × bare by CPU | target | result |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|")
	bare, blob := slices.Index(res.servers, srvBare), slices.Index(res.servers, srvBlob)
	for i, bc := range cases {
		rs := res.rounds[i]
		for j, name := range res.servers {
			r := res.runs[i][j]
			label := ""
			if j == 0 {
				label = bc.name
			}
			target, result := "", ""
			if name == srvOurs {
				var ts, rs []string
				for _, v := range caseVerdicts(res, i) {
					ts = append(ts, v.target)
					rs = append(rs, v.result())
				}
				target, result = strings.Join(ts, "; "), strings.Join(rs, "; ")
			} else if r.non2xx > 0 || r.sockErrs > 0 {
				result = fmt.Sprintf("%d non-2xx, %d socket errors", r.non2xx, r.sockErrs)
			}
			if name == srvOurs {
				name = "**" + name + "**"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.2f | %.2f | %.2f | %s + %s + %s | %.2f | %s | %s |\n", label, name,
				fmtInt(int64(r.reqPerSec)), fmtDur(r.p50), fmtDur(r.p99),
				rpsRatio(rs[j], rs[bare]), rpsRatio(rs[j], rs[blob]),
				r.cmdsPerReq, fmtMicros(r.srvCPU), fmtMicros(r.redisCPU), fmtMicros(r.wrkCPU),
				cpuRatio(rs[j], rs[bare]), target, result)
		}
	}

}

// printLogin is the table of carol's login: Redis memory, time, commands
// and round trips, blob sessions against profilecache.
func printLogin(w io.Writer, res *results) {
	cfg := res.cfg
	b, o := res.login[srvBlob], res.login[srvOurs]
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| measure | blob session | profilecache | ratio | target | result |")
	fmt.Fprintln(w, "|---|--:|--:|--:|---|---|")
	x1 := float64(o.bytes1) / float64(b.bytes1)
	v1 := verdict{target: fmt.Sprintf("≤ %.1f × blob", targetBytes), ok: x1 <= targetBytes, got: fmt.Sprintf("%.2f", x1)}
	fmt.Fprintf(w, "| Redis bytes for carol, 1 login (MEMORY USAGE; ours: profile keys) | %s (%d key) | %s (%s keys) | %.2f | %s | %s |\n",
		fmtBytes(b.bytes1), b.keys1, fmtBytes(o.bytes1), fmtInt(int64(o.keys1)), x1, v1.target, v1.result())
	x10 := float64(o.bytes10) / float64(b.bytes1)
	v10 := verdict{target: fmt.Sprintf("≤ %.1f × one blob session", targetBytes), ok: x10 <= targetBytes, got: fmt.Sprintf("%.2f", x10)}
	fmt.Fprintf(w, "| Redis bytes for carol, 10 logins on 10 devices (all keys) | %s (%d keys) | %s (%s keys; profile %s) | %.2f | %s | %s |\n",
		fmtBytes(b.bytes10), b.keys10, fmtBytes(o.bytes10), fmtInt(int64(o.keys10)), fmtBytes(o.profile10),
		float64(o.bytes10)/float64(b.bytes10), v10.target, v10.result())
	fmt.Fprintf(w, "| used_memory growth with the first login (INFO memory; all keys, incl. keyspace and expiry tables) | %s | %s | %.2f | | |\n",
		fmtBytes(b.usedMemory1), fmtBytes(o.usedMemory1), float64(o.usedMemory1)/float64(b.usedMemory1))
	xl := float64(o.median) / float64(b.median)
	vl := verdict{target: fmt.Sprintf("≤ %.0f × blob", targetLoginRatio), ok: xl <= targetLoginRatio, got: fmt.Sprintf("%.2f", xl)}
	fmt.Fprintf(w, "| login of carol, median of %d (BACKEND_LATENCY=0, incl. bcrypt) | %s | %s | %.2f | %s | %s |\n",
		cfg.logins, fmtDur(b.median), fmtDur(o.median), xl, vl.target, vl.result())
	fmt.Fprintf(w, "| Redis commands per login (INFO stats) | %s | %s | | | |\n", fmtInt(b.cmdsPerLog), fmtInt(o.cmdsPerLog))
	vt := tripsVerdict(res.trips)
	fmt.Fprintf(w, "| Redis round trips per login | %s (scs: one command each) | %d: %s | | %s | %s |\n",
		fmtInt(b.cmdsPerLog), len(res.trips), strings.Join(collapseTrips(res.trips), ", "), vt.target, vt.result())
}

// roundsNote says in the table's header how its figures came from the rounds.
func roundsNote(n int) string {
	if n == 1 {
		return "1 round"
	}
	return fmt.Sprintf("%d rounds, the order reversed every other round; req/s, p50, p99, Redis cmds/req and CPU: median of the rounds; "+
		"× bare, × blob, × bare by CPU and the targets' ratios: median of the per-round ratios (runs of one round and case)", n)
}

// tripBound is the most commands, or keys, one round trip of a login may
// carry (issue 11): redisrepo's batch of 64 keys, plus a write batch's
// fence key. Redis runs a transaction or script as one step, so a larger
// one would stall every other user.
const tripBound = 65

// tripsVerdict checks that every round trip of the login is bounded,
// however large carol's profile.
func tripsVerdict(trips []string) verdict {
	v := verdict{target: fmt.Sprintf("every round trip ≤ %d commands or keys", tripBound)}
	largest := 0
	for _, t := range trips {
		largest = max(largest, tripCommands(t))
	}
	v.ok = largest <= tripBound
	v.got = "largest " + strconv.Itoa(largest)
	return v
}

// collapseTrips writes runs of equal round trips once, as "label ×n".
func collapseTrips(trips []string) []string {
	var out []string
	for i := 0; i < len(trips); {
		j := i + 1
		for j < len(trips) && trips[j] == trips[i] {
			j++
		}
		if j-i > 1 {
			out = append(out, fmt.Sprintf("%s ×%d", trips[i], j-i))
		} else {
			out = append(out, trips[i])
		}
		i = j
	}
	return out
}

// tripCommands reads N from a "… (N commands)" or "… (N keys)" label.
func tripCommands(label string) int {
	i := strings.LastIndex(label, "(")
	if i < 0 {
		return 1
	}
	f := strings.Fields(strings.TrimSuffix(label[i+1:], ")"))
	if len(f) != 2 || (f[1] != "commands" && f[1] != "keys") {
		return 1
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 1
	}
	return n
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
}

func fmtMicros(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64)
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// fmtInt groups thousands: 12,345.
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
