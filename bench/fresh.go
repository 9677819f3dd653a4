package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The freshness part (issue 12, -only fresh): two profilecache instances on
// one Redis, the mock CRM at BACKEND_LATENCY=300ms, and 32 clients reading
// alice's orders page for -fresh-duration at a fixed rate (vegeta, half of
// -fresh-rate on each instance, at most 16 requests in flight on each):
// once with PROFILE_FRESH=orders=2s, once with freshness off. It reports
// the CRM loads of orders (from both instances' /metrics: section reloads
// plus whole-profile loads), the reads that waited for the CRM, the
// answers marked Profile-Stale, and the latency of the reads.

const onlyFresh = "fresh"

// freshModes are the runs, in order.
var freshModes = []string{"orders=2s", "off"}

// freshRun is one run of the freshness part.
type freshRun struct {
	mode        string
	res         fixedResult
	ordersLoads float64 // CRM loads of orders over both instances
	reloadFails float64 // section reloads that failed
	waited      float64 // reads that waited for the CRM
	stale       float64 // answers marked Profile-Stale
}

func runFresh(ctx context.Context, cfg config, p *procs, ours string, rds *privateRedis, stdout io.Writer, say func(string, ...any)) error {
	var runs []freshRun
	for _, mode := range freshModes {
		say("fresh: PROFILE_FRESH=%s, two instances, BACKEND_LATENCY=300ms, %d req/s for %v, at most %d in flight",
			mode, cfg.freshRate, cfg.freshDuration, freshClients)
		r, err := measureFresh(ctx, cfg, p, ours, rds, mode)
		if err != nil {
			return fmt.Errorf("fresh, PROFILE_FRESH=%s: %w", mode, err)
		}
		say("fresh: PROFILE_FRESH=%-9s p50 %v p99 %v, %.0f CRM loads of orders, %.0f reads waited, %.0f stale answers",
			mode, r.res.p50.Round(time.Microsecond), r.res.p99.Round(time.Microsecond), r.ordersLoads, r.waited, r.stale)
		runs = append(runs, r)
	}
	printFreshTable(stdout, cfg, runs)
	return nil
}

// freshClients bounds the requests in flight over both instances.
const freshClients = 32

func measureFresh(ctx context.Context, cfg config, p *procs, ours string, rds *privateRedis, mode string) (freshRun, error) {
	if err := rds.flushAll(ctx); err != nil {
		return freshRun{}, err
	}
	inst, err := startFreshPair(ctx, cfg, p, ours, rds, mode)
	defer func() {
		for _, s := range inst {
			stopChild(s.child)
		}
	}()
	if err != nil {
		return freshRun{}, err
	}
	auth, err := login(ctx, inst[0], "alice")
	if err != nil {
		return freshRun{}, err
	}
	const path = "/api/me/orders?offset=0&limit=20"
	for _, s := range inst {
		if err := check(ctx, s.url+path, auth, `"total":25`); err != nil {
			return freshRun{}, err
		}
	}
	before, err := freshCounters(ctx, inst)
	if err != nil {
		return freshRun{}, err
	}
	samples, err := attackPair(ctx, cfg, inst, path, auth)
	if err != nil {
		return freshRun{}, err
	}
	after, err := freshCounters(ctx, inst)
	if err != nil {
		return freshRun{}, err
	}
	d := func(k string) float64 { return after[k] - before[k] }
	return freshRun{
		mode: mode,
		res:  summarize(samples, cfg.freshRate),
		// A whole-profile load loads orders too.
		ordersLoads: d(`profilecache_section_reloads_total{outcome="ok",section="orders"}`) +
			d(`profilecache_section_reloads_total{outcome="error",section="orders"}`) +
			d(`profilecache_backend_loads_total{result="ok"}`) + d(`profilecache_backend_loads_total{result="error"}`),
		reloadFails: d(`profilecache_section_reloads_total{outcome="error",section="orders"}`),
		waited:      d(`profilecache_read_waits_total{reason="miss"}`) + d(`profilecache_read_waits_total{reason="stale_max"}`),
		stale:       d(`profilecache_stale_sections_total{section="orders"}`),
	}, nil
}

// attackPair reads path on every instance at once, splitting the rate and
// the requests in flight evenly, and returns every sample.
func attackPair(ctx context.Context, cfg config, inst []*server, path string, auth []string) ([]sample, error) {
	var (
		mu      sync.Mutex
		samples []sample
		errs    []error
		wg      sync.WaitGroup
	)
	for _, s := range inst {
		wg.Go(func() {
			client, closeIdle := attackClient(freshClients / len(inst))
			defer closeIdle()
			got, err := attack(ctx, client, attackSpec{url: s.url + path, headers: auth, rate: cfg.freshRate / len(inst),
				duration: cfg.freshDuration, maxWorkers: freshClients / len(inst)})
			mu.Lock()
			defer mu.Unlock()
			samples = append(samples, got...)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return samples, nil
}

// startFreshPair starts two instances with the mock CRM at 300 ms and
// PROFILE_FRESH=mode; it returns those it started, also on error.
func startFreshPair(ctx context.Context, cfg config, p *procs, ours string, rds *privateRedis, mode string) ([]*server, error) {
	var inst []*server
	for i := 1; i <= 2; i++ {
		addr, err := freeAddr()
		if err != nil {
			return inst, err
		}
		env := append(oursEnv(cfg, addr, rds.addr), "BACKEND_LATENCY=300ms", "PROFILE_FRESH="+mode, "LOG_LEVEL=warn")
		c, err := p.start(fmt.Sprintf("profilecache-fresh-%d", i), ours, nil, env)
		if err != nil {
			return inst, err
		}
		s := &server{name: srvOurs, url: "http://" + addr, child: c, auth: map[string][]string{}}
		inst = append(inst, s)
		if err := waitHTTP(ctx, c, s.url+"/healthz"); err != nil {
			return inst, err
		}
	}
	return inst, nil
}

var sampleLine = regexp.MustCompile(`(?m)^(profilecache_(?:section_reloads|backend_loads|read_waits|stale_sections)_total\{[^}]*\}) (\S+)$`)

// freshCounters sums the freshness counters of every instance's /metrics.
func freshCounters(ctx context.Context, inst []*server) (map[string]float64, error) {
	out := map[string]float64{}
	for _, s := range inst {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/metrics", nil)
		if err != nil {
			return nil, err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		for _, m := range sampleLine.FindAllStringSubmatch(string(body), -1) {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", s.url, m[0], err)
			}
			out[m[1]] += v
		}
	}
	return out, nil
}

// stopChild ends one child: SIGTERM, then SIGKILL after a grace period.
func stopChild(c *child) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

func printFreshTable(w io.Writer, cfg config, runs []freshRun) {
	fmt.Fprintf(w, "\nFreshness (issue 12): two instances, BACKEND_LATENCY=300ms, GET %s as alice,\n", "/api/me/orders?offset=0&limit=20")
	fmt.Fprintf(w, "%d req/s for %v (vegeta, fixed rate, half on each instance, at most %d requests in flight)\n\n",
		cfg.freshRate, cfg.freshDuration, freshClients)
	fmt.Fprintln(w, "| PROFILE_FRESH | requests | 2xx | p50 | p99 | max | CRM loads of orders | reads that waited for the CRM | answers marked Profile-Stale |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range runs {
		fmt.Fprintf(w, "| %s | %d | %d | %v | %v | %v | %.0f | %.0f | %.0f |\n", r.mode, r.res.requests, r.res.okCount,
			r.res.p50.Round(time.Microsecond), r.res.p99.Round(time.Microsecond), r.res.max.Round(time.Microsecond),
			r.ordersLoads, r.waited, r.stale)
	}
	if len(runs) == 2 && runs[1].res.p99 > 0 {
		fmt.Fprintf(w, "\np99 with freshness / without: %.2f. One load per window would be %.0f loads.\n",
			float64(runs[0].res.p99)/float64(runs[1].res.p99), cfg.freshDuration.Seconds()/2)
	}
	for _, r := range runs {
		if !r.res.held() {
			fmt.Fprintf(w, "PROFILE_FRESH=%s: the rate was not held (%.0f req/s sent).\n", r.mode, r.res.sentRate)
		}
		if r.reloadFails > 0 {
			fmt.Fprintf(w, "PROFILE_FRESH=%s: %.0f orders reloads failed.\n", r.mode, r.reloadFails)
		}
	}
}
