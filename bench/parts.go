package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The parts of a bench run after the saturation table (issue 11, parts 4
// and 5): fixed-rate latency (fixedrate.go) and one vs two instances on the
// one Redis (instances.go). Each can be run alone with -only, to iterate on
// it without the ten minutes of the saturation rounds.

// partsConfig selects the harness's parts and holds the flags of the
// fixed-rate and two-instance parts.
type partsConfig struct {
	only       string // "": every part; else one of parts
	fixed      bool
	instances  bool
	stalls     bool
	rateAlice  int // req/s for alice's cases
	rateCarol  int // req/s for carol's cases
	maxWorkers int // vegeta's bound on requests in flight
	fresh      bool
	tracing    bool
}

// parts are the values of -only.
var parts = []string{"saturation", "fixed", "instances", onlyStalls, onlyFresh, onlyTracing}

func addPartsFlags(fs *flag.FlagSet, pc *partsConfig) {
	fs.StringVar(&pc.only, "only", "", "run one part only: "+strings.Join(parts, ", ")+" (saturation: the wrk table with logins and memory)")
	fs.BoolVar(&pc.fixed, "fixed-rate", true, "fixed-rate latency runs with vegeta (open model), after the saturation table")
	fs.BoolVar(&pc.instances, "instances", true, "one vs two profilecache instances on the one Redis, after the fixed-rate runs")
	fs.BoolVar(&pc.stalls, onlyStalls, true, "Redis stalls while carol logs in (issue 11, stalls.go), last")
	fs.BoolVar(&pc.fresh, onlyFresh, false, "per-section freshness (issue 12, fresh.go): two instances with BACKEND_LATENCY=300ms, PROFILE_FRESH=orders=2s against off; last")
	fs.BoolVar(&pc.tracing, onlyTracing, true, "OpenTelemetry tracing's cost (issue 17, tracing.go): /api/me for alice with tracing off, at 1 % and at 100 %, against bare, after the two-instance runs")
	fs.IntVar(&pc.rateAlice, "rate-alice", 3000, "fixed rate for alice's cases, req/s")
	fs.IntVar(&pc.rateCarol, "rate-carol", 100, "fixed rate for carol's cases, req/s (blob sessions spend ~7 ms of CPU on each of her requests)")
	fs.IntVar(&pc.maxWorkers, "max-in-flight", 2000, "fixed rate: most requests in flight (vegeta MaxWorkers); beyond it the rate is not held, and the table says so")
}

func (pc partsConfig) check() error {
	switch {
	case pc.only != "" && !slices.Contains(parts, pc.only):
		return fmt.Errorf("-only: want one of %s, got %q", strings.Join(parts, ", "), pc.only)
	case pc.rateAlice < 1 || pc.rateCarol < 1:
		return fmt.Errorf("-rate-alice and -rate-carol must be at least 1")
	case pc.maxWorkers < 1:
		return fmt.Errorf("-max-in-flight must be at least 1")
	}
	return nil
}

// runs says whether part runs, given -only and the part's own switch.
func (pc partsConfig) runs(part string) bool {
	if pc.only != "" {
		return pc.only == part
	}
	switch part {
	case "fixed":
		return pc.fixed
	case "instances":
		return pc.instances
	case onlyStalls:
		return pc.stalls
	case onlyFresh:
		return pc.fresh
	case onlyTracing:
		return pc.tracing
	}
	return true
}

// rate is the fixed rate of bc.
func (pc partsConfig) rate(bc benchCase) int {
	if bc.user == "carol" {
		return pc.rateCarol
	}
	return pc.rateAlice
}

// runParts runs the fixed-rate and two-instance parts that the flags ask
// for and prints their tables. servers are logged in already after the
// saturation rounds; with -only they are not yet.
func runParts(ctx context.Context, cfg config, p *procs, rds *privateRedis, servers []*server, ours string, stdout io.Writer, say func(string, ...any)) error {
	if cfg.parts.runs("fixed") {
		if err := logInIfNeeded(ctx, servers); err != nil {
			return err
		}
		fr, err := runFixed(ctx, cfg, rds, servers, say)
		if err != nil {
			return err
		}
		printFixedTable(stdout, fr)
	}
	if cfg.parts.runs("instances") {
		ir, err := runInstances(ctx, cfg, p, rds, ours, say)
		if err != nil {
			return err
		}
		printInstancesTable(stdout, ir)
	}
	if cfg.parts.runs(onlyTracing) {
		tr, err := runTracing(ctx, cfg, p, rds, servers, ours, say)
		if err != nil {
			return err
		}
		printTracingTable(stdout, tr)
	}
	if cfg.parts.runs(onlyStalls) {
		if err := runStalls(ctx, cfg, p, ours, rds, stdout, say); err != nil {
			return err
		}
	}
	if cfg.parts.runs(onlyFresh) {
		return runFresh(ctx, cfg, p, ours, rds, stdout, say)
	}
	return nil
}

// logInIfNeeded logs alice and carol in on every server that has no
// session yet.
func logInIfNeeded(ctx context.Context, servers []*server) error {
	for _, s := range servers {
		if len(s.auth) > 0 {
			continue
		}
		if err := logInAll(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}
