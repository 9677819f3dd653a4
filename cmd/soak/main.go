// Command soak runs profilecache under load against a real redis-server and
// restarts Redis in the middle (`make soak`; not part of `make test`).
//
// It starts its own redis-server and the service (built from
// ./cmd/profilecache unless -bin names a binary), runs -clients concurrent
// clients for -duration, each signed in as one of the demo users and mixing
// login, the HTML profile page, order paging, refresh, session data, session
// listing and logout, kills Redis halfway and starts it again (empty) after
// -outage. It prints what was served and exits 1 unless:
//   - every request that started and ended while Redis was down got 503,
//   - no request got a 5xx other than 503, or no answer at all,
//   - no response ever held data of a user other than the client's own,
//   - the service served again after Redis came back, without a restart.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/profilecache/profilecache/internal/redisproc"
	"github.com/profilecache/profilecache/profile"
)

type config struct {
	duration     time.Duration
	outage       time.Duration
	clients      int
	bin          string
	redisTimeout time.Duration
	keep         bool
}

func main() {
	var cfg config
	flag.DurationVar(&cfg.duration, "duration", 60*time.Second, "how long the load runs")
	flag.DurationVar(&cfg.outage, "outage", 5*time.Second, "how long Redis stays down, from the middle of the run")
	flag.IntVar(&cfg.clients, "clients", 64, "concurrent clients")
	flag.StringVar(&cfg.bin, "bin", "", "profilecache binary (default: go build ./cmd/profilecache)")
	flag.DurationVar(&cfg.redisTimeout, "redis-timeout", 2*time.Second, "REDIS_TIMEOUT of the service")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the work directory (logs) after the run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, out io.Writer) (bool, error) {
	if cfg.duration <= 0 || cfg.outage <= 0 || cfg.outage >= cfg.duration/2 || cfg.clients < 1 {
		return false, errors.New("want -duration > 0, 0 < -outage < duration/2, -clients >= 1")
	}
	dir, err := os.MkdirTemp("", "profilecache-soak-")
	if err != nil {
		return false, err
	}
	if cfg.keep {
		fmt.Fprintln(out, "work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	redis, err := redisproc.Start(redisproc.Options{Dir: dir})
	if err != nil {
		return false, fmt.Errorf("start redis-server: %w", err)
	}
	defer redis.Stop()

	bin, err := buildApp(ctx, cfg.bin, dir)
	if err != nil {
		return false, err
	}
	base, stopApp, err := startApp(ctx, bin, dir, redis.Addr, cfg.redisTimeout)
	if err != nil {
		return false, err
	}
	defer stopApp()

	r := newRecorder()
	loadCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range cfg.clients {
		wg.Go(func() { newClient(i, base, cfg.redisTimeout, r).loop(loadCtx) })
	}

	stopAt, restartAt, err := outage(loadCtx, cfg, redis)
	if err != nil {
		cancel()
		wg.Wait()
		return false, err
	}
	wg.Wait()
	if ctx.Err() != nil {
		return false, errors.New("interrupted")
	}
	return r.report(out, cfg, start, stopAt, restartAt), nil
}

// buildApp returns bin, or builds ./cmd/profilecache into dir when bin is empty.
func buildApp(ctx context.Context, bin, dir string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	bin = filepath.Join(dir, "profilecache")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/profilecache")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/profilecache (run from the repository root): %w", err)
	}
	return bin, nil
}

// outage stops Redis halfway through the run and restarts it, empty, after
// cfg.outage; zero times if the run ended first.
func outage(ctx context.Context, cfg config, redis *redisproc.Proc) (stopAt, restartAt time.Time, err error) {
	select {
	case <-ctx.Done():
		return stopAt, restartAt, nil
	case <-time.After(cfg.duration / 2):
	}
	redis.Stop()
	stopAt = time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(cfg.outage):
	}
	restartAt = time.Now()
	return stopAt, restartAt, redis.Restart()
}

// startApp runs the service as its own process and waits for /healthz.
func startApp(ctx context.Context, bin, dir, redisAddr string, redisTimeout time.Duration) (string, func(), error) {
	port, err := redisproc.FreePort()
	if err != nil {
		return "", nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logf, err := os.Create(filepath.Join(dir, "profilecache.log"))
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"ADDR="+addr,
		"REDIS_URL=redis://"+redisAddr,
		"REDIS_TIMEOUT="+redisTimeout.String(),
		"SESSION_SECRET="+rand.Text()+rand.Text(),
		// Every client comes from 127.0.0.1: the per-address login limit
		// would otherwise be the first thing the soak measures.
		"LOGIN_RATE=100000",
		"LOGIN_BURST=100000",
		// Refreshes exercise the reload path, as before the cooldown.
		"REFRESH_COOLDOWN=0",
		// Some 21 clients share each demo user: the session cap would end
		// one client's session at every other's login, and the soak would
		// measure logins.
		"MAX_SESSIONS_PER_USER=100000",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	base := "http://" + addr
	if err := waitHealthy(ctx, base, exited, logf.Name()); err != nil {
		stop()
		return "", nil, err
	}
	return base, stop, nil
}

// waitHealthy waits until base answers /healthz with 200, the process
// exits, ctx ends or 30 s pass.
// It puts back what it takes from exited (a buffer of one), for stop.
func waitHealthy(ctx context.Context, base string, exited chan error, logName string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("profilecache exited at start (%v); see %s", err, logName)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("profilecache did not answer /healthz within 30s")
		}
	}
}

// result is one request.
type result struct {
	op, path   string
	status     int // 0: no answer
	start, end time.Time
	problem    string // another user's data or a wrong body; empty if fine
}

type recorder struct {
	mu      sync.Mutex
	results []result
}

func newRecorder() *recorder { return &recorder{results: make([]result, 0, 1<<18)} }

func (r *recorder) add(res result) {
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
}

// client is one simulated user agent, signed in as one demo user.
type client struct {
	id      int
	base    string
	user    profile.DemoAccount
	others  []profile.DemoAccount
	http    *http.Client
	rec     *recorder
	rng     *mrand.Rand
	token   string
	dataKey string
	data    string // what this session last stored under dataKey
	seq     int
}

func newClient(id int, base string, redisTimeout time.Duration, rec *recorder) *client {
	users := profile.DemoAccounts
	u := users[id%len(users)]
	var others []profile.DemoAccount
	for _, o := range users {
		if o.Email != u.Email {
			others = append(others, o)
		}
	}
	jar, _ := cookiejar.New(nil)
	return &client{
		id: id, base: base, user: u, others: others, rec: rec,
		// An answer later than this is a hang: the service must answer
		// within REDIS_TIMEOUT (plus its own work) even with Redis down.
		http: &http.Client{Jar: jar, Timeout: 10*redisTimeout + 10*time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		rng:     mrand.New(mrand.NewPCG(uint64(id), 42)),
		dataKey: "soak-" + strconv.Itoa(id),
	}
}

func (c *client) loop(ctx context.Context) {
	for ctx.Err() == nil {
		if c.token == "" {
			c.login(ctx)
			if c.token == "" {
				sleep(ctx, 100*time.Millisecond) // e.g. Redis is down: do not spin
			}
			continue
		}
		switch n := c.rng.IntN(100); {
		case n < 30:
			c.orders(ctx)
		case n < 45:
			c.me(ctx)
		case n < 60:
			c.profilePage(ctx)
		case n < 72:
			c.sessionData(ctx)
		case n < 80:
			c.sessions(ctx)
		case n < 85:
			c.refresh(ctx)
		case n < 98:
			c.interests(ctx)
		default:
			c.logout(ctx)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// do sends one request and records it. check, if set, inspects a 2xx body
// and returns a problem description.
func (c *client) do(ctx context.Context, op, method, path, body string, check func(string) string) (int, string) {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), method, c.base+path, strings.NewReader(body))
	if err != nil {
		panic(err) // a bug in the soak itself
	}
	switch {
	case op == "login":
		req.Header.Set("Content-Type", "application/json")
	case op == "profile page":
		// The JWT is also the cookie value: a browser-style request.
		req.AddCookie(&http.Cookie{Name: "pc_session", Value: c.token})
	default:
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res := result{op: op, path: method + " " + path, start: time.Now()}
	resp, err := c.http.Do(req)
	if err != nil {
		res.end = time.Now()
		res.problem = "no answer: " + err.Error()
		c.rec.add(res)
		return 0, ""
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	res.end, res.status = time.Now(), resp.StatusCode
	text := string(b)
	res.problem = c.foreign(text)
	if res.problem == "" && check != nil && resp.StatusCode/100 == 2 {
		res.problem = check(text)
	}
	// 401 on the API, 303 to /login on pages: Redis restarted empty, a
	// logout, or a timeout. Sign in again.
	if (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusSeeOther) && op != "login" {
		c.token = "" // Redis restarted empty, logged out, or timed out: sign in again
	}
	c.rec.add(res)
	return resp.StatusCode, text
}

// foreign reports another user's email, name or order numbers in body.
func (c *client) foreign(body string) string {
	for _, o := range c.others {
		for _, s := range []string{o.Email, o.Last, fmt.Sprintf("ORD-%d-", o.Seed), fmt.Sprintf("INV-%d-", o.Seed)} {
			if strings.Contains(body, s) {
				return fmt.Sprintf("client of %s got data of %s (%q)", c.user.Email, o.Email, s)
			}
		}
	}
	return ""
}

func (c *client) login(ctx context.Context) {
	status, body := c.do(ctx, "login", http.MethodPost, "/api/login",
		fmt.Sprintf(`{"email":%q,"password":%q}`, c.user.Email, c.user.Password), nil)
	if status != http.StatusOK {
		return
	}
	var out struct{ Token string }
	if json.Unmarshal([]byte(body), &out) == nil {
		c.token, c.data = out.Token, ""
	}
}

func (c *client) me(ctx context.Context) {
	c.do(ctx, "me", http.MethodGet, "/api/me", "", func(body string) string {
		var me struct {
			Email     string `json:"email"`
			FirstName string `json:"first_name"`
			LastName  string `json:"last_name"`
		}
		if err := json.Unmarshal([]byte(body), &me); err != nil || me.Email != c.user.Email ||
			me.FirstName != c.user.First || me.LastName != c.user.Last {
			return fmt.Sprintf("/api/me of %s answered %.200s", c.user.Email, body)
		}
		return ""
	})
}

func (c *client) orders(ctx context.Context) {
	limit := 1 + c.rng.IntN(100)
	offset := c.rng.IntN(max(c.user.Orders, 1))
	c.do(ctx, "orders", http.MethodGet, fmt.Sprintf("/api/me/orders?offset=%d&limit=%d", offset, limit), "", func(body string) string {
		var page struct {
			Items []struct {
				Number string `json:"number"`
			} `json:"items"`
			Total int `json:"total"`
		}
		want := max(0, min(limit, c.user.Orders-offset))
		if err := json.Unmarshal([]byte(body), &page); err != nil || page.Total != c.user.Orders || len(page.Items) != want {
			return fmt.Sprintf("orders of %s at %d+%d: %.200s", c.user.Email, offset, limit, body)
		}
		prefix := fmt.Sprintf("ORD-%d-", c.user.Seed)
		for _, it := range page.Items {
			if !strings.HasPrefix(it.Number, prefix) {
				return fmt.Sprintf("orders of %s hold %s", c.user.Email, it.Number)
			}
		}
		return ""
	})
}

func (c *client) profilePage(ctx context.Context) {
	page := 1 + c.rng.IntN(max(1, min(c.user.Orders/profile.DefaultLimit, 20)))
	c.do(ctx, "profile page", http.MethodGet, fmt.Sprintf("/profile?page=%d", page), "", func(body string) string {
		if !strings.Contains(body, c.user.Last) || !strings.Contains(body, c.user.Email) {
			return fmt.Sprintf("profile page of %s lacks the user's name or email", c.user.Email)
		}
		return ""
	})
}

func (c *client) interests(ctx context.Context) {
	c.do(ctx, "interests", http.MethodGet, "/api/me/interests", "", func(body string) string {
		var got []string
		if err := json.Unmarshal([]byte(body), &got); err != nil || len(got) != c.user.Interests {
			return fmt.Sprintf("interests of %s: %.200s", c.user.Email, body)
		}
		return ""
	})
}

// sessionData writes a value no other session ever writes and reads it
// back: a read that returns anything else is another session's data.
func (c *client) sessionData(ctx context.Context) {
	c.seq++
	v := fmt.Sprintf("client %d value %d", c.id, c.seq)
	status, _ := c.do(ctx, "session data", http.MethodPut, "/api/session/data/"+c.dataKey, v, nil)
	if status != http.StatusNoContent {
		return
	}
	c.data = v
	c.do(ctx, "session data", http.MethodGet, "/api/session/data/"+c.dataKey, "", func(body string) string {
		if body != c.data {
			return fmt.Sprintf("client %d read %.100q, stored %q", c.id, body, c.data)
		}
		return ""
	})
}

func (c *client) sessions(ctx context.Context) {
	c.do(ctx, "sessions", http.MethodGet, "/api/sessions", "", func(body string) string {
		var list []struct {
			Current bool `json:"current"`
		}
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			return fmt.Sprintf("sessions: %.200s", body)
		}
		current := 0
		for _, s := range list {
			if s.Current {
				current++
			}
		}
		if current != 1 {
			return fmt.Sprintf("sessions of %s mark %d as current, want 1", c.user.Email, current)
		}
		return ""
	})
}

func (c *client) refresh(ctx context.Context) {
	c.do(ctx, "refresh", http.MethodPost, "/api/me/refresh", "", nil)
}

// logout forgets the token whatever the answer, as a browser's logout
// drops the cookie: the service stops honouring a session as soon as it is
// asked to end it, even if Redis could not be told (503).
func (c *client) logout(ctx context.Context) {
	c.do(ctx, "logout", http.MethodPost, "/api/logout", "", nil)
	c.token = ""
}

// report prints the run and checks the guarantees.
// summary is what report prints, gathered from the results in one pass.
type summary struct {
	end           time.Time
	byStatus      map[int]int
	byOp          map[string]map[int]int
	opLat         map[string][]time.Duration
	lat           []time.Duration
	outageStatus  map[int]int // requests that started and ended while Redis was down
	outageOther   []string    // the first of those that were not 503
	problems      []string    // the first answers with a wrong body
	nProblems     int
	serverErrors  int // 5xx but 503
	noAnswer      int
	afterOK       int // 2xx that started after the restart
	stopAt        time.Time
	restartAt     time.Time
	start         time.Time
	clients       int
	duration      time.Duration
	redisTimeout  time.Duration
	requestsTotal int
}

func (r *recorder) report(out io.Writer, cfg config, start, stopAt, restartAt time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := summarize(r.results, start, stopAt, restartAt)
	s.clients, s.duration, s.redisTimeout = cfg.clients, cfg.duration, cfg.redisTimeout
	s.printTraffic(out)
	return s.printChecks(out)
}

func summarize(results []result, start, stopAt, restartAt time.Time) summary {
	s := summary{end: start, start: start, stopAt: stopAt, restartAt: restartAt, requestsTotal: len(results),
		byStatus: map[int]int{}, byOp: map[string]map[int]int{}, opLat: map[string][]time.Duration{}, outageStatus: map[int]int{}}
	for _, res := range results {
		if res.end.After(s.end) {
			s.end = res.end
		}
		s.byStatus[res.status]++
		if s.byOp[res.op] == nil {
			s.byOp[res.op] = map[int]int{}
		}
		s.byOp[res.op][res.status]++
		s.lat = append(s.lat, res.end.Sub(res.start))
		s.opLat[res.op] = append(s.opLat[res.op], res.end.Sub(res.start))
		if res.status == 0 {
			s.noAnswer++
		}
		if res.status >= 500 && res.status != http.StatusServiceUnavailable {
			s.serverErrors++
		}
		if res.problem != "" {
			s.nProblems++
			if len(s.problems) < 10 {
				s.problems = append(s.problems, res.problem)
			}
		}
		if !stopAt.IsZero() && !res.start.Before(stopAt) && res.end.Before(restartAt) {
			s.outageStatus[res.status]++
			if res.status != http.StatusServiceUnavailable && len(s.outageOther) < 10 {
				s.outageOther = append(s.outageOther, fmt.Sprintf("%s %s -> %d at %.3fs-%.3fs", res.op, res.path, res.status,
					res.start.Sub(start).Seconds(), res.end.Sub(start).Seconds()))
			}
		}
		if !restartAt.IsZero() && res.start.After(restartAt) && res.status/100 == 2 {
			s.afterOK++
		}
	}
	return s
}

// printTraffic prints what was served: counts, statuses and latency per operation.
func (s summary) printTraffic(out io.Writer) {
	elapsed := s.end.Sub(s.start)
	fmt.Fprintf(out, "soak: %d clients for %v against redis-server, REDIS_TIMEOUT %v\n", s.clients, s.duration, s.redisTimeout)
	fmt.Fprintf(out, "requests served: %d in %v (%.0f/s)\n", s.requestsTotal, elapsed.Round(time.Millisecond),
		float64(s.requestsTotal)/elapsed.Seconds())
	fmt.Fprintf(out, "by status: %s\n", statuses(s.byStatus))
	ops := make([]string, 0, len(s.byOp))
	for op := range s.byOp {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		l := s.opLat[op]
		slices.Sort(l)
		fmt.Fprintf(out, "  %-13s p50 %-8v p99 %-8v %s\n", op, pct(l, 0.50), pct(l, 0.99), statuses(s.byOp[op]))
	}
	slices.Sort(s.lat)
	if len(s.lat) > 0 {
		fmt.Fprintf(out, "latency: p50 %v, p99 %v, max %v\n", pct(s.lat, 0.50), pct(s.lat, 0.99), s.lat[len(s.lat)-1])
	}
}

// printChecks prints the soak's verdicts and reports whether all passed.
func (s summary) printChecks(out io.Writer) bool {
	ok := true
	check := func(cond bool, format string, args ...any) {
		mark := "ok  "
		if !cond {
			mark, ok = "FAIL", false
		}
		fmt.Fprintf(out, "%s %s\n", mark, fmt.Sprintf(format, args...))
	}
	if s.stopAt.IsZero() {
		check(false, "Redis was restarted in the middle (the run ended first)")
	} else {
		nonOutage := 0
		for st, n := range s.outageStatus {
			if st != http.StatusServiceUnavailable {
				nonOutage += n
			}
		}
		fmt.Fprintf(out, "redis down from %.1fs to %.1fs: requests within the outage: %s\n",
			s.stopAt.Sub(s.start).Seconds(), s.restartAt.Sub(s.start).Seconds(), statuses(s.outageStatus))
		check(s.outageStatus[http.StatusServiceUnavailable] > 0 && nonOutage == 0,
			"only 503 while Redis was down (%d × 503, %d other)", s.outageStatus[http.StatusServiceUnavailable], nonOutage)
		for _, o := range s.outageOther {
			fmt.Fprintln(out, "   ", o)
		}
		check(s.afterOK > 0, "recovered without a restart: %d successful requests after Redis came back", s.afterOK)
	}
	check(s.serverErrors == 0, "no 5xx but 503: %d", s.serverErrors)
	check(s.noAnswer == 0, "every request answered: %d without an answer", s.noAnswer)
	check(s.nProblems == 0, "no response with another user's data or a wrong body: %d", s.nProblems)
	for _, p := range s.problems {
		fmt.Fprintln(out, "   ", p)
	}
	if ok {
		fmt.Fprintln(out, "PASS")
	} else {
		fmt.Fprintln(out, "FAIL")
	}
	return ok
}

func statuses(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		name := strconv.Itoa(k)
		if k == 0 {
			name = "none"
		}
		parts = append(parts, fmt.Sprintf("%s × %d", name, m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func pct(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	d := sorted[max(0, min(i, len(sorted)-1))]
	if d > 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}
