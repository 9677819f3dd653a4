package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/internal/crmtest"
	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
)

// failoverRun is the shape of one TestClusterFailover run: the short one
// of `make test`, or the long one of `make failover` (FAILOVER_LONG=1).
type failoverRun struct {
	nodeTimeout    time.Duration // cluster-node-timeout
	redisTimeout   time.Duration // REDIS_TIMEOUT of both instances
	usersPerMaster int           // load users whose keys live on each master
	rounds         int           // kills, each of another master
	steady         int           // successes per instance before a kill and after a rejoin
	// pause: the master freezes (SIGSTOP: a hung host, a network black
	// hole) instead of dying, and thaws (SIGCONT) instead of restarting.
	pause bool
	// partial: cluster-require-full-coverage no, so that the other masters
	// keep serving while one shard has no master.
	partial bool
}

func failoverRunFromEnv(t *testing.T) failoverRun {
	r := failoverRun{nodeTimeout: 2 * time.Second, redisTimeout: time.Second, usersPerMaster: 2, rounds: 1, steady: 100}
	if v, _ := strconv.ParseBool(os.Getenv("FAILOVER_LONG")); v {
		r.usersPerMaster, r.rounds, r.steady = 8, 3, 3000
	}
	r.pause = os.Getenv("FAILOVER_MODE") == "pause"
	r.partial = os.Getenv("FAILOVER_FULL_COVERAGE") == "no"
	if v := os.Getenv("FAILOVER_NODE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("FAILOVER_NODE_TIMEOUT: %v", err)
		}
		r.nodeTimeout = d
	}
	return r
}

// failoverUser is a CRM account whose keys ({u:<id>}) live on one master.
type failoverUser struct {
	id              uuid.UUID
	email, password string
	slot            int
	master          string // node id of the master at the start
}

// fhit is a hit of the failover load: which instance, which user.
type fhit struct {
	hit
	inst, user int
	op         string
}

func (h fhit) ok() bool { return h.err == nil && h.status/100 == 2 }

// failLogin is a login the load saw succeed: its session must outlive the
// failover on the instance that waits for a replica.
type failLogin struct {
	inst, user int
	token      string
	end        time.Time
}

// TestClusterFailover kills a master of a Redis Cluster (three masters,
// one replica each) under a steady read/write load on two instances of the
// service, one that waits for a replica to confirm each login's session
// (REDIS_WAIT_REPLICAS=1) and one that does not. It asserts behaviour, no
// timings: no 500 and no transport error ever, 2xx or 503 JSON while the
// failover lasts and 2xx only outside it, no user ever sees another's
// data, every session created before the kill, and every login the
// waiting instance confirmed, still works once the replica is promoted,
// the killed node started again rejoins as a replica, and the service
// recovers by itself (the same process throughout). It logs the failover
// window and what was lost; `make failover` runs a longer version that
// prints a table.
func TestClusterFailover(t *testing.T) {
	run := failoverRunFromEnv(t)
	var extra []string
	if run.partial {
		extra = []string{"--cluster-require-full-coverage", "no"}
	}
	fc := redistest.StartFailoverCluster(t, run.nodeTimeout, extra...)
	crm := crmtest.New(t)
	demo, err := profile.Fetch(context.Background(), profile.NewMockBackend(0), profile.DemoUserID("alice@example.com"))
	if err != nil {
		t.Fatal(err)
	}

	// Users whose hash tag falls on each master, so that a kill always
	// hits some and spares others.
	masters := fc.Masters(t)
	var users []failoverUser
	perMaster := map[string]int{}
	for len(users) < run.usersPerMaster*len(masters) {
		id := uuid.New()
		slot := fc.KeySlot(t, "{u:"+id.String()+"}")
		m := masters[slices.IndexFunc(masters, func(m redistest.NodeInfo) bool { return m.Owns(slot) })]
		if perMaster[m.ID] == run.usersPerMaster {
			continue
		}
		perMaster[m.ID]++
		u := failoverUser{id: id, email: fmt.Sprintf("user%d@example.com", len(users)), password: "pw-" + id.String()[:8], slot: slot, master: m.ID}
		p := *demo
		p.Basic.ID, p.Basic.Email, p.Basic.FirstName = id, u.email, fmt.Sprintf("User %d", len(users))
		crm.Add(u.email, u.password, &p)
		users = append(users, u)
	}

	env := map[string]string{
		"BACKEND_URL":   crm.URL,
		"REDIS_TIMEOUT": run.redisTimeout.String(),
		// The load logs in all the time, from one address.
		"LOGIN_RATE": "1000000", "LOGIN_BURST": "1000000", "MAX_SESSIONS_PER_USER": "1000000",
	}
	waitEnv := map[string]string{"REDIS_WAIT_REPLICAS": "1"}
	for k, v := range env {
		waitEnv[k] = v
	}
	instances := []*e2e{startE2EOn(t, fc, waitEnv), startE2EOn(t, fc, env)}
	instName := []string{"wait", "nowait"}
	c := apiClient(t)

	// Sessions created before any kill, on both instances.
	old := make([][]string, len(instances))
	for i, e := range instances {
		for _, u := range users {
			old[i] = append(old[i], apiLoginToken(t, c, e.url, u.email, u.password))
		}
	}

	var (
		mu     sync.Mutex
		hits   []fhit
		logins []failLogin
		acked  = map[string]int{} // per session-data key: last value whose PUT got 2xx
		wg     sync.WaitGroup
	)
	stop := make(chan struct{})
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)
	for inst, e := range instances {
		for ui, u := range users {
			wg.Go(func() {
				tok := old[inst][ui]
				key := fmt.Sprintf("n-%d-%d", inst, ui)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					h := fhit{inst: inst, user: ui}
					switch i % 5 {
					case 0:
						h.op, h.hit = "me", call(c, e.url, http.MethodGet, "/api/me", tok, "")
					case 1:
						h.op, h.hit = "orders", call(c, e.url, http.MethodGet, fmt.Sprintf("/api/me/orders?offset=%d&limit=10", i%20), tok, "")
					case 2:
						h.op, h.hit = "put", call(c, e.url, http.MethodPut, "/api/session/data/"+key, tok, strconv.Itoa(i))
					case 3:
						h.op, h.hit = "sessions", call(c, e.url, http.MethodGet, "/api/sessions", tok, "")
					case 4:
						h.op, h.hit = "login", call(c, e.url, http.MethodPost, "/api/login", "", fmt.Sprintf(`{"email":%q,"password":%q}`, u.email, u.password))
					}
					mu.Lock()
					hits = append(hits, h)
					if h.ok() {
						switch h.op {
						case "put":
							acked[key] = i
						case "login":
							logins = append(logins, failLogin{inst: inst, user: ui, token: tokenOf(h.body), end: h.end})
						}
					}
					mu.Unlock()
				}
			})
		}
	}

	// successes counts 2xx per instance since from (on users of a master,
	// if master is not "").
	successes := func(from time.Time, master string) []int {
		mu.Lock()
		defer mu.Unlock()
		n := make([]int, len(instances))
		for _, h := range hits {
			if h.ok() && !h.start.Before(from) && (master == "" || users[h.user].master == master) {
				n[h.inst]++
			}
		}
		return n
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute) // a sanity bound, not a target
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 2m", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	atLeast := func(n []int, want int) bool { return !slices.ContainsFunc(n, func(x int) bool { return x < want }) }

	var rounds []failoverRound
	start := time.Now()
	poll("load served before the first kill", func() bool { return atLeast(successes(start, ""), run.steady) })
	for r := range run.rounds {
		victim := fc.Masters(t)[r%len(masters)]
		// A slot of the victim's that a user of ours hashes to; the users
		// are assigned to masters by their first master's id.
		ui := slices.IndexFunc(users, func(u failoverUser) bool { return victim.Owns(u.slot) })
		if ui < 0 {
			t.Fatalf("round %d: no user on %s", r, victim.Addr)
		}
		rd := failoverRound{victim: victim.Addr, slot: users[ui].slot, owner: users[ui].master}

		rd.kill = time.Now()
		if run.pause {
			fc.Pause(t, victim.Addr)
		} else {
			fc.Kill(t, victim.Addr)
		}
		promoted := fc.WaitFailover(t, rd.slot, victim)
		rd.promoted = time.Now()
		// Recovered: every instance served users of the shard with requests
		// that started after the promotion.
		poll("requests on the failed-over shard", func() bool { return atLeast(successes(rd.promoted, rd.owner), 20) })
		rd.recovered = time.Now()

		rd.restarted = time.Now()
		if run.pause {
			fc.Resume(t, victim.Addr)
		} else {
			fc.Restart(t, victim.Addr)
		}
		fc.WaitRejoined(t, victim.Addr, promoted)
		rd.rejoined = time.Now()
		if self := fc.Nodes(t, victim.Addr)[0]; self.Master || self.MasterID != promoted.ID {
			t.Errorf("round %d: the restarted %s is %+v, want a replica of the promoted %s", r, victim.Addr, self, promoted.Addr)
		}
		fc.WaitHealthy(t)
		from := time.Now()
		poll("load served after the rejoin", func() bool { return atLeast(successes(from, ""), run.steady) })
		rounds = append(rounds, rd)
	}
	stopLoad()

	// Every answer: 2xx, or 503 JSON while a failover lasted; never a
	// transport error, never another user's data.
	inWindow := func(h fhit) *failoverRound {
		for i := range rounds {
			if h.start.Before(rounds[i].recovered) && h.end.After(rounds[i].kill) {
				return &rounds[i]
			}
		}
		return nil
	}
	bad := 0
	for _, h := range hits {
		rd := inWindow(h)
		if rd != nil {
			rd.count(h, users[h.user].master == rd.owner)
		}
		var problem string
		switch {
		case h.err != nil:
			problem = "a transport error"
		case h.ok():
			if h.op == "me" && !strings.Contains(h.body, users[h.user].id.String()) {
				problem = "not the profile of " + users[h.user].id.String()
			}
		case rd == nil:
			problem = "outside any failover, want 2xx"
		case h.status != http.StatusServiceUnavailable || !isErrorJSON(h.body):
			problem = "during the failover of " + rd.victim + ", want 2xx or 503 JSON"
		}
		if problem != "" {
			t.Errorf("instance %s: %s: %s", instName[h.inst], h, problem)
			if bad++; bad > 20 {
				t.Fatal("too many bad answers")
			}
		}
	}
	for i, e := range instances {
		if strings.Contains(e.log.String(), `"status":500`) {
			t.Errorf("instance %s logged a 500", instName[i])
		}
	}

	// What survived: the sessions from before the kills, every login the
	// waiting instance confirmed, the session data.
	// What waiting for a replica costs a login, side by side: logins that
	// succeeded outside every failover, per instance.
	loginTimes := make([][]time.Duration, len(instances))
	for _, h := range hits {
		if h.op == "login" && h.ok() && inWindow(h) == nil {
			loginTimes[h.inst] = append(loginTimes[h.inst], h.end.Sub(h.start))
		}
	}
	pct := func(ds []time.Duration, p int) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return ds[(len(ds)-1)*p/100].Round(10 * time.Microsecond)
	}

	lost := make([]int, len(instances))
	for i, e := range instances {
		for ui, u := range users {
			h := call(c, e.url, http.MethodGet, "/api/me", old[i][ui], "")
			if h.status != http.StatusOK || !strings.Contains(h.body, u.id.String()) {
				t.Errorf("instance %s: a session of %s from before the kill: %v, want 200 with its profile", instName[i], u.email, h)
			}
			h = call(c, e.url, http.MethodGet, "/api/me/orders?limit=1", old[i][ui], "")
			if h.status != http.StatusOK || !strings.Contains(h.body, `"total":25`) {
				t.Errorf("instance %s: orders of %s: %v, want all 25", instName[i], u.email, h)
			}
		}
	}
	for _, l := range logins {
		h := call(c, instances[l.inst].url, http.MethodGet, "/api/sessions", l.token, "")
		switch {
		case h.status == http.StatusOK:
		case h.status == http.StatusUnauthorized && l.inst == 1:
			lost[l.inst]++ // acknowledged, then lost with the master: no WAIT
		default:
			t.Errorf("instance %s: a login confirmed at %v (kill at %v): %v, want 200", instName[l.inst], l.end.Format(time.StampMicro), rounds[0].kill.Format(time.StampMicro), h)
		}
	}
	lostData := 0
	for key, n := range acked {
		var inst, ui int
		fmt.Sscanf(key, "n-%d-%d", &inst, &ui)
		h := call(c, instances[inst].url, http.MethodGet, "/api/session/data/"+key, old[inst][ui], "")
		got, err := strconv.Atoi(strings.Trim(h.body, `"`))
		switch {
		case h.status == http.StatusOK && err == nil && got == n:
		case (h.status == http.StatusOK && err == nil && got < n) || h.status == http.StatusNotFound:
			lostData++ // an acknowledged write that did not reach the replica
		default:
			t.Errorf("session data %s: %v, want %d (or an earlier value: writes are not waited for)", key, h, n)
		}
	}

	tw := &strings.Builder{}
	how := "SIGKILL, restart"
	if run.pause {
		how = "SIGSTOP, SIGCONT"
	}
	fmt.Fprintf(tw, "failover of a master under load (%s): cluster-node-timeout %v, cluster-require-full-coverage %s, REDIS_TIMEOUT %v, %d users on each of 3 masters, %d clients\n",
		how, run.nodeTimeout, map[bool]string{false: "yes", true: "no"}[run.partial], run.redisTimeout, run.usersPerMaster, len(users)*len(instances))
	fmt.Fprintf(tw, "%-5s %-16s %9s %9s %9s %9s %9s %9s %9s %9s  %-14s %-14s\n", "round", "node", "1st fail", "promoted", "last fail", "window", "others", "recovered", "slowest", "rejoin", "shard ok/503", "others ok/503")
	for i, rd := range rounds {
		ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
		since := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return ms(t.Sub(rd.kill))
		}
		window := "-"
		if !rd.firstFail.IsZero() {
			window = ms(rd.lastFail.Sub(rd.firstFail))
		}
		fmt.Fprintf(tw, "%-5d %-16s %9s %9s %9s %9s %9s %9s %9s %9s  %-14s %-14s\n", i+1, rd.victim,
			since(rd.firstFail), since(rd.promoted), since(rd.lastFail), window, since(rd.othersLastFail), since(rd.recovered),
			ms(rd.slowest), ms(rd.rejoined.Sub(rd.restarted)),
			fmt.Sprintf("%d/%d", rd.shard[0], rd.shard[1]), fmt.Sprintf("%d/%d", rd.others[0], rd.others[1]))
	}
	for i, rd := range rounds {
		fmt.Fprintf(tw, "round %d: non-2xx by operation: shard %v, others %v\n", i+1, rd.failedOps[0], rd.failedOps[1])
	}
	fmt.Fprintf(tw, "times from the kill; 1st/last fail: first and last non-2xx answer to the killed master's users, window: between them; others: last non-2xx\n")
	fmt.Fprintf(tw, "to the other users; promoted: every node agrees on the new master and says cluster_state:ok; recovered: both instances served the shard's\n")
	fmt.Fprintf(tw, "users again; slowest: the longest request of the shard's users in the window; rejoin: restart until in sync as a replica;\n")
	fmt.Fprintf(tw, "ok/503: answers in the window (kill to recovered) to the shard's users and to the others\n")
	fmt.Fprintf(tw, "login outside the failovers, p50/p90: wait %v/%v, nowait %v/%v\n",
		pct(loginTimes[0], 50), pct(loginTimes[0], 90), pct(loginTimes[1], 50), pct(loginTimes[1], 90))
	fmt.Fprintf(tw, "lost: logins confirmed then gone: wait %d of %d, nowait %d of %d; session-data writes acknowledged then gone: %d of %d keys\n",
		lost[0], countInst(logins, 0), lost[1], countInst(logins, 1), lostData, len(acked))
	t.Log("\n" + tw.String())
	if lost[0] != 0 {
		t.Errorf("the instance with REDIS_WAIT_REPLICAS=1 lost %d confirmed logins", lost[0])
	}
}

// failoverRound is one kill and what the load saw of it.
type failoverRound struct {
	victim, owner                       string // killed node's address; its id (users' master)
	slot                                int
	kill, promoted, recovered           time.Time
	restarted, rejoined                 time.Time
	firstFail, lastFail, othersLastFail time.Time
	slowest                             time.Duration     // of the shard's users' requests in the window
	shard, others                       [2]int            // answers in the window to the killed shard's users / the others: 2xx, 503
	failedOps                           [2]map[string]int // non-2xx answers in the window by operation: shard, others
}

func (rd *failoverRound) count(h fhit, onShard bool) {
	ctr, last := &rd.others, &rd.othersLastFail
	if onShard {
		ctr, last = &rd.shard, &rd.lastFail
		rd.slowest = max(rd.slowest, h.end.Sub(h.start))
	}
	if h.ok() {
		ctr[0]++
		return
	}
	ctr[1]++
	i := 1
	if onShard {
		i = 0
	}
	if rd.failedOps[i] == nil {
		rd.failedOps[i] = map[string]int{}
	}
	rd.failedOps[i][h.op]++
	if onShard && (rd.firstFail.IsZero() || h.end.Before(rd.firstFail)) {
		rd.firstFail = h.end
	}
	if h.end.After(*last) {
		*last = h.end
	}
}

func countInst(ls []failLogin, inst int) int {
	n := 0
	for _, l := range ls {
		if l.inst == inst {
			n++
		}
	}
	return n
}

// tokenOf is the token of a /api/login answer.
func tokenOf(body string) string {
	_, rest, _ := strings.Cut(body, `"token":"`)
	tok, _, _ := strings.Cut(rest, `"`)
	return tok
}
