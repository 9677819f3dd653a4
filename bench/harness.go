package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/profilecache/profilecache/profile"
)

// config is the harness's flags.
type config struct {
	root      string
	load      load
	warmup    time.Duration
	logins    int
	rounds    int // each measures every case on every server
	idle      bool
	redisAddr string
	oursEnv   []string // extra environment for profilecache, e.g. GOGC=400
	parts     partsConfig
	// Stalls (stalls.go).
	stallsBaseline string // a tree to measure the stalls of too, as "before"
	stallReaders   int
	stallRate      int // reads per second over all readers; 0: each as fast as it can
	stallRounds    int
	stallFIFO      bool // redis-server's threads in SCHED_FIFO for the stalls part
	// Freshness (fresh.go).
	freshRate     int
	freshDuration time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.root, "root", "..", "repository root (where ./cmd/profilecache is)")
	fs.DurationVar(&cfg.load.duration, "duration", 10*time.Second, "measured wrk run per case and server")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "wrk warm-up before each measured run")
	fs.IntVar(&cfg.load.threads, "threads", 2, "wrk threads")
	fs.IntVar(&cfg.load.conns, "conns", 64, "wrk connections")
	fs.IntVar(&cfg.rounds, "rounds", 3, "throughput rounds, each measuring every case on every server, the order reversed every other round; the table shows the median of the rounds, and ratios as the median of per-round ratios")
	fs.IntVar(&cfg.logins, "logins", 10, "logins of carol per server for the login time (at least 10: memory is measured after the 10th)")
	fs.BoolVar(&cfg.idle, "idle", true, "also measure blob sessions with scs IdleTimeout (the blob is rewritten on every request)")
	fs.StringVar(&cfg.redisAddr, "redis-addr", "", "address for the private redis-server (default: a free loopback port)")
	fs.Func("ours-env", "extra NAME=value for profilecache's environment, e.g. GOGC=400 or LOG_LEVEL=warn (repeatable)", func(v string) error {
		if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
			return fmt.Errorf("want NAME=value, got %q", v)
		}
		cfg.oursEnv = append(cfg.oursEnv, v)
		return nil
	})
	addPartsFlags(fs, &cfg.parts)
	fs.StringVar(&cfg.stallsBaseline, "stalls-baseline", "", "stalls: also measure the profilecache in this tree, as \"before\" (e.g. `git worktree add /tmp/before main`)")
	fs.IntVar(&cfg.stallReaders, "stall-readers", 64, "stalls: HTTP clients reading alice's and bob's pages while carol logs in")
	fs.IntVar(&cfg.stallRounds, "stall-rounds", 3, "stalls: rounds, each tree once per round; the longest stall is the median of the rounds'")
	fs.BoolVar(&cfg.stallFIFO, "stalls-fifo", false, "stalls: run redis-server's threads in SCHED_FIFO (chrt; needs CAP_SYS_NICE), as if Redis had a core of its own: on a shared machine the OS otherwise pauses Redis mid-command for other processes, which even nice -20 does not prevent, and the latency monitor counts those pauses as the command's")
	fs.IntVar(&cfg.stallRate, "stall-rate", 1000, "stalls: the readers' reads per second, all together, at planned times (latency counts from the planned time); 0: each reads as fast as it can, which saturates a small machine and measures its CPU, not Redis")
	fs.IntVar(&cfg.freshRate, "fresh-rate", 320, "fresh: reads per second over both instances (32 clients reading 10 times a second)")
	fs.DurationVar(&cfg.freshDuration, "fresh-duration", time.Minute, "fresh: length of each run")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if err := cfg.parts.check(); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.load.duration < time.Second || cfg.warmup < 0:
		return cfg, fmt.Errorf("-duration must be at least 1s and -warmup not negative")
	case cfg.rounds < 1:
		return cfg, fmt.Errorf("-rounds must be at least 1, got %d", cfg.rounds)
	case cfg.logins < 10:
		return cfg, fmt.Errorf("-logins must be at least 10, got %d", cfg.logins)
	case cfg.load.threads < 1 || cfg.load.conns < cfg.load.threads:
		return cfg, fmt.Errorf("need -threads >= 1 and -conns >= -threads")
	case cfg.stallReaders < 1 || cfg.stallRate < 0 || cfg.stallRounds < 1:
		return cfg, fmt.Errorf("need -stall-readers >= 1, -stall-rate >= 0 and -stall-rounds >= 1")
	case cfg.freshRate < 2 || cfg.freshDuration < time.Second:
		return cfg, fmt.Errorf("need -fresh-rate >= 2 and -fresh-duration >= 1s")
	}
	return cfg, nil
}

// The servers, in the order they run for each case.
const (
	srvBare     = "bare"
	srvBlob     = "blob"
	srvBlobIdle = "blob+idle"
	srvOurs     = "profilecache"
)

// server is one server under test and how to authenticate as each user.
type server struct {
	name  string
	url   string
	child *child
	auth  map[string][]string // user -> wrk/HTTP headers
}

// benchCase is one row group of the table, as in issue 3.
type benchCase struct {
	name string
	user string
	path string
	want string // in every good answer
}

var cases = []benchCase{
	{"GET /api/me, alice", "alice", "/api/me", "Ångström"},
	{"GET /api/me, carol", "carol", "/api/me", "Nguyễn"},
	{"orders offset 0 limit 20, alice", "alice", "/api/me/orders?offset=0&limit=20", `"total":25`},
	{"orders offset 5000 limit 20, carol", "carol", "/api/me/orders?offset=5000&limit=20", "ORD-3-005000"},
}

const sessionSecret = "bench-secret-bench-secret-bench-secret"

// results is everything the table shows.
type results struct {
	cfg     config
	servers []string
	runs    [][]runResult   // [case][server], aggregated over the rounds
	rounds  [][][]runResult // [case][server][round]: the ratios are taken per round
	login   map[string]loginResult
	trips   []string // our login's round trips
	started time.Time
	elapsed time.Duration
	load    [2]string // load average at start and end
}

type runResult struct {
	wrkResult
	cmdsPerReq float64
	// CPU time per request of the server process, redis-server and wrk:
	// much less affected than req/s by other load on the machine (10–20 %
	// rather than ±25 % between runs on a loaded box).
	srvCPU, redisCPU, wrkCPU time.Duration
}

// cpu is all the CPU time one request cost: server, Redis and load driver.
// On an otherwise idle 2-core machine that all three saturate, req/s is
// about 2 s / cpu, whatever else the machine is doing now.
func (r runResult) cpu() time.Duration { return r.srvCPU + r.redisCPU + r.wrkCPU }

type loginResult struct {
	median      time.Duration
	cmdsPerLog  int64
	bytes1      int64 // the profile after one login (ours: without session keys)
	keys1       int
	bytes10     int64 // everything of carol after ten logins
	keys10      int
	profile10   int64 // ours: the profile alone after ten logins
	profileKeys int
	// usedMemory1 is how much INFO memory's used_memory grew with the first
	// login: unlike MEMORY USAGE it includes the keyspace's and the expiry
	// table's per-key overhead.
	usedMemory1 int64
}

// run is the harness: it builds the tree, starts Redis and the servers,
// measures logins, memory and throughput at saturation, then the other
// parts.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := preflight(cfg); err != nil {
		return err
	}
	say := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	res := &results{cfg: cfg, started: time.Now(), login: map[string]loginResult{}}
	res.load[0] = loadAvg()

	dir, err := os.MkdirTemp("", "profilecache-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p := &procs{dir: dir}
	defer p.stopAll()

	say("building ./cmd/profilecache")
	ours := filepath.Join(dir, "profilecache")
	if err := buildProfilecache(ctx, cfg.root, ours); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	rds, err := startHarnessRedis(ctx, p, cfg.redisAddr, say)
	if err != nil {
		return err
	}
	defer rds.rdb.Close()
	if cfg.parts.only == onlyStalls { // needs none of the other servers
		return runStalls(ctx, cfg, p, ours, rds, stdout, say)
	}
	if cfg.parts.only == onlyFresh { // likewise
		return runFresh(ctx, cfg, p, ours, rds, stdout, say)
	}

	servers, err := startServers(ctx, p, cfg, self, ours, rds.addr)
	if err != nil {
		return err
	}
	if cfg.parts.runs("saturation") {
		if err := runSaturation(ctx, cfg, rds, servers, res, say); err != nil {
			return err
		}
		printTable(stdout, res)
	}
	return runParts(ctx, cfg, p, rds, servers, ours, stdout, say)
}

// preflight fails on what would fail later: no wrk where a part needs it,
// and a taken -redis-addr (before the build, not minutes later).
func preflight(cfg config) error {
	if _, err := exec.LookPath("wrk"); err != nil && cfg.parts.only != onlyStalls && cfg.parts.only != onlyFresh {
		return fmt.Errorf("wrk not found: run `make bench`, which installs it (scripts/ensure-deps.sh wrk)")
	}
	if cfg.redisAddr != "" {
		if err := checkFree(cfg.redisAddr); err != nil {
			return fmt.Errorf("-redis-addr: %w", err)
		}
	}
	return nil
}

// buildProfilecache builds ./cmd/profilecache of the tree at root into bin.
func buildProfilecache(ctx context.Context, root, bin string) error {
	build := exec.CommandContext(ctx, cmp.Or(os.Getenv("GO"), "go"), "build", "-o", bin, "./cmd/profilecache")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/profilecache in %s: %w\n%s", root, err, out)
	}
	return nil
}

// startHarnessRedis starts the harness's redis-server on addr, or on a free
// address if addr is empty.
func startHarnessRedis(ctx context.Context, p *procs, addr string, say func(string, ...any)) (*privateRedis, error) {
	if addr == "" {
		var err error
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	say("starting redis-server on %s", addr)
	return startRedis(ctx, p, addr)
}

// runSaturation measures logins and memory, then every case's throughput
// at saturation on every server, into res.
func runSaturation(ctx context.Context, cfg config, rds *privateRedis, servers []*server, res *results, say func(string, ...any)) error {
	for _, s := range servers {
		res.servers = append(res.servers, s.name)
	}
	// Memory and login time, one server at a time on an empty Redis.
	for _, s := range servers {
		if s.name != srvBlob && s.name != srvOurs {
			continue
		}
		say("%s: %d logins of carol, memory after 1 and 10", s.name, cfg.logins)
		lr, err := measureLogins(ctx, rds, s, cfg.logins)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		res.login[s.name] = lr
	}
	if err := rds.flushAll(ctx); err != nil {
		return err
	}
	var err error
	if res.trips, err = loginTrips(ctx, rds.addr); err != nil {
		return fmt.Errorf("count login round trips: %w", err)
	}
	rounds, err := measureThroughput(ctx, cfg, rds, servers, say)
	if err != nil {
		return err
	}
	res.rounds, res.runs = rounds, aggregateAll(rounds)
	res.elapsed = time.Since(res.started)
	res.load[1] = loadAvg()
	return nil
}

// measureThroughput runs every case on every server, cfg.rounds times,
// on fresh sessions, and returns the runs by [case][server][round].
func measureThroughput(ctx context.Context, cfg config, rds *privateRedis, servers []*server, say func(string, ...any)) ([][][]runResult, error) {
	// Throughput: fresh sessions, then every case on every server in turn,
	// so that machine noise spreads over all servers alike, in rounds whose
	// order alternates, so that a drift of the machine's speed does too.
	if err := rds.flushAll(ctx); err != nil {
		return nil, err
	}
	for _, s := range servers {
		if err := logInAll(ctx, s); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	total := cfg.rounds * len(cases) * len(servers)
	eta := time.Duration(total) * (cfg.load.duration + cfg.warmup + time.Second)
	say("throughput: %d runs of %v (+%v warm-up) in %d rounds, about %v", total, cfg.load.duration, cfg.warmup, cfg.rounds, eta.Round(time.Second))
	rounds := make([][][]runResult, len(cases)) // [case][server][round]
	for i := range rounds {
		rounds[i] = make([][]runResult, len(servers))
	}
	for round := range cfg.rounds {
		for _, sl := range roundOrder(round, len(cases), len(servers)) {
			bc, s := cases[sl.c], servers[sl.s]
			r, err := measureCase(ctx, cfg, rds, s, bc)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s, %s: %w", round+1, bc.name, s.name, err)
			}
			say("round %d/%d  %-36s %-13s %9.0f req/s  p50 %-9v p99 %-9v %.2f redis cmds/req  CPU/req %v + %v redis + %v wrk",
				round+1, cfg.rounds, bc.name, s.name,
				r.reqPerSec, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.cmdsPerReq, r.srvCPU, r.redisCPU, r.wrkCPU)
			rounds[sl.c][sl.s] = append(rounds[sl.c][sl.s], r)
		}
	}
	return rounds, nil
}

func startServers(ctx context.Context, p *procs, cfg config, self, ours, redisAddr string) ([]*server, error) {
	type spec struct {
		name, bin string
		args, env []string
	}
	addrs := map[string]string{}
	for _, n := range []string{srvBare, srvBlob, srvBlobIdle, srvOurs} {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs[n] = a
	}
	specs := []spec{
		{srvBare, self, []string{"serve-bare", "-addr", addrs[srvBare]}, nil},
		{srvBlob, self, []string{"serve-blob", "-addr", addrs[srvBlob], "-redis", redisAddr}, nil},
	}
	if cfg.idle {
		specs = append(specs, spec{srvBlobIdle, self,
			[]string{"serve-blob", "-addr", addrs[srvBlobIdle], "-redis", redisAddr, "-idle-timeout", "20m"}, nil})
	}
	specs = append(specs, spec{srvOurs, ours, nil, oursEnv(cfg, addrs[srvOurs], redisAddr)})
	var out []*server
	for _, sp := range specs {
		c, err := p.start(sp.name, sp.bin, sp.args, sp.env)
		if err != nil {
			return nil, err
		}
		s := &server{name: sp.name, url: "http://" + addrs[sp.name], child: c, auth: map[string][]string{}}
		if err := waitHTTP(ctx, c, s.url+"/healthz"); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// oursEnv is profilecache's environment: listening on addr, on the private
// Redis, with -ours-env last.
func oursEnv(cfg config, addr, redisAddr string) []string {
	return append([]string{
		"ADDR=" + addr,
		"REDIS_URL=redis://" + redisAddr + "/0",
		"SESSION_SECRET=" + sessionSecret,
		"BACKEND_LATENCY=0",
		"LOGIN_RATE=10000",
		"LOGIN_BURST=10000",
	}, cfg.oursEnv...)
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// login logs user in on s and returns the headers that authenticate as them.
func login(ctx context.Context, s *server, user string) ([]string, error) {
	body, _ := json.Marshal(map[string]string{"email": user + "@example.com", "password": user + "-secret"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/api/login", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("login %s: %d %s", user, resp.StatusCode, b)
	}
	if s.name == srvOurs {
		var out struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
			return nil, fmt.Errorf("login %s: no token in %s", user, b)
		}
		return []string{"Authorization: Bearer " + out.Token}, nil
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "session" && ck.Value != "" {
			return []string{"Cookie: session=" + ck.Value}, nil
		}
	}
	return nil, fmt.Errorf("login %s: no session cookie", user)
}

func logInAll(ctx context.Context, s *server) error {
	for _, u := range []string{"alice", "carol"} {
		if s.name == srvBare {
			s.auth[u] = []string{userHeader + ": " + u}
			continue
		}
		h, err := login(ctx, s, u)
		if err != nil {
			return err
		}
		s.auth[u] = h
	}
	return nil
}

// measureLogins logs carol in n times on an empty Redis, timing each login,
// and measures what Redis holds after the first and the tenth.
func measureLogins(ctx context.Context, rds *privateRedis, s *server, n int) (loginResult, error) {
	var lr loginResult
	if err := rds.flushAll(ctx); err != nil {
		return lr, err
	}
	carol := profile.DemoUserID("carol@example.com").String()
	isSession := func(k string) bool { return strings.Contains(k, "}:s:") || strings.HasSuffix(k, "}:sessions") }
	profileKeys := func(k string) bool { return !isSession(k) }
	all := func(string) bool { return true }
	pattern := "pc:{u:" + carol + "}:*"
	if s.name != srvOurs {
		pattern = "scs:session:*"
	}
	used0, err := rds.info(ctx, "memory", "used_memory")
	if err != nil {
		return lr, err
	}
	var times []time.Duration
	for i := 1; i <= n; i++ {
		c0, err := rds.commands(ctx)
		if err != nil {
			return lr, err
		}
		start := time.Now()
		if _, err := login(ctx, s, "carol"); err != nil {
			return lr, err
		}
		times = append(times, time.Since(start))
		c1, err := rds.commands(ctx)
		if err != nil {
			return lr, err
		}
		if i == 2 { // the first login of ours also loads Lua scripts
			lr.cmdsPerLog = c1 - c0 - 1 // minus the first INFO
		}
		if i == 1 {
			used1, err := rds.info(ctx, "memory", "used_memory")
			if err != nil {
				return lr, err
			}
			lr.usedMemory1 = used1 - used0
		}
		switch {
		case i == 1 && s.name == srvOurs:
			lr.bytes1, lr.keys1, err = rds.keyBytes(ctx, pattern, profileKeys)
		case i == 1:
			lr.bytes1, lr.keys1, err = rds.keyBytes(ctx, pattern, all)
		case i == 10:
			lr.bytes10, lr.keys10, err = rds.keyBytes(ctx, pattern, all)
			if err == nil && s.name == srvOurs {
				lr.profile10, lr.profileKeys, err = rds.keyBytes(ctx, pattern, profileKeys)
			}
		}
		if err != nil {
			return lr, err
		}
	}
	lr.median = median(times)
	return lr, nil
}

// measureCase checks that s answers bc correctly, warms it up, and runs wrk.
func measureCase(ctx context.Context, cfg config, rds *privateRedis, s *server, bc benchCase) (runResult, error) {
	url := s.url + bc.path
	if err := check(ctx, url, s.auth[bc.user], bc.want); err != nil {
		return runResult{}, err
	}
	if cfg.warmup >= time.Second {
		if _, err := runWrk(ctx, load{cfg.load.threads, cfg.load.conns, cfg.warmup}, url, s.auth[bc.user]); err != nil {
			return runResult{}, err
		}
	}
	s.child.truncateLog()
	c0, err := rds.commands(ctx)
	if err != nil {
		return runResult{}, err
	}
	s0, err0 := s.child.cpuTime()
	r0, err1 := rds.child.cpuTime()
	w, err := runWrk(ctx, cfg.load, url, s.auth[bc.user])
	if err != nil {
		return runResult{}, err
	}
	s1, err2 := s.child.cpuTime()
	r1, err3 := rds.child.cpuTime()
	if err := cmp.Or(err0, err1, err2, err3); err != nil {
		return runResult{}, err
	}
	c1, err := rds.commands(ctx)
	if err != nil {
		return runResult{}, err
	}
	if err := s.child.failed(); err != nil {
		return runResult{}, err
	}
	s.child.truncateLog()
	r := runResult{wrkResult: w}
	if w.requests > 0 {
		r.cmdsPerReq = float64(c1-c0-1) / float64(w.requests)
		r.srvCPU = (s1 - s0) / time.Duration(w.requests)
		r.redisCPU = (r1 - r0) / time.Duration(w.requests)
		r.wrkCPU = w.cpu / time.Duration(w.requests)
	}
	return r, nil
}

// check makes one request and wants a 200 whose body contains want, so that
// the load run measures real answers, not 401s.
func check(ctx context.Context, url string, headers []string, want string) error {
	req, err := newGet(ctx, url, headers)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(want)) {
		return fmt.Errorf("GET %s: %d, body %.300s; want 200 with %q", url, resp.StatusCode, b, want)
	}
	return nil
}

// newGet is a GET of url with headers given as "Name: value", as wrk's -H
// takes them.
func newGet(ctx context.Context, url string, headers []string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	return req, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
