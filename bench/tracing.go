package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// The tracing part (issue 17, -only tracing): what OpenTelemetry traces
// cost. Three profilecache instances on the one Redis, tracing off (no
// OTEL_* variable), sampling 1 % and 100 % of the requests
// (OTEL_TRACES_SAMPLER=traceidratio), exporting over OTLP/HTTP to a sink in
// this process that decodes nothing and answers 200, and the bare echo
// server, each driven by wrk on alice's /api/me in turn, in rounds whose
// order alternates. The table gives req/s and CPU per request × bare, the
// median of the per-round ratios, as the saturation table does.

const onlyTracing = "tracing"

// tracingModes are the instances: a name and the environment on top of
// oursEnv.
var tracingModes = []struct {
	name string
	env  []string
}{
	{"off", nil},
	{"1 %", []string{"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.01"}},
	{"100 %", []string{"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=1.0"}},
}

// tracingCase is the case measured: the hot cached read.
var tracingCase = cases[0]

// otlpSink accepts OTLP/HTTP exports and discards them, as a collector
// that keeps up would: an empty body is an empty
// ExportTraceServiceResponse.
func otlpSink() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

type tracingResults struct {
	names []string
	runs  [][]runResult // [mode][round]; the last is bare
}

func runTracing(ctx context.Context, cfg config, p *procs, rds *privateRedis, servers []*server, ours string, say func(string, ...any)) (*tracingResults, error) {
	var bare *server
	for _, s := range servers {
		if s.name == srvBare {
			bare = s
		}
	}
	if err := logInIfNeeded(ctx, []*server{bare}); err != nil {
		return nil, err
	}
	sink, stop, err := otlpSink()
	if err != nil {
		return nil, err
	}
	defer stop()
	inst, err := startTracingInstances(ctx, cfg, p, rds, ours, sink)
	if err != nil {
		return nil, err
	}
	all := append(inst, bare)
	res := &tracingResults{runs: make([][]runResult, len(all))}
	for _, m := range tracingModes {
		res.names = append(res.names, m.name)
	}
	say("tracing: %d runs of %v (+%v warm-up), %s, tracing off, 1 %%, 100 %% and bare", cfg.rounds*len(all), cfg.load.duration, cfg.warmup, tracingCase.name)
	for round := range cfg.rounds {
		for _, sl := range roundOrder(round, 1, len(all)) {
			r, err := measureCase(ctx, cfg, rds, all[sl.s], tracingCase)
			if err != nil {
				return nil, fmt.Errorf("tracing, round %d: %w", round+1, err)
			}
			name := "bare"
			if sl.s < len(inst) {
				name = "tracing " + res.names[sl.s]
			}
			say("tracing %d/%d  %-13s %9.0f req/s  p99 %-9v CPU/req %v + %v redis", round+1, cfg.rounds, name,
				r.reqPerSec, r.p99.Round(time.Microsecond), r.srvCPU, r.redisCPU)
			res.runs[sl.s] = append(res.runs[sl.s], r)
		}
	}
	for _, s := range inst {
		stopChild(s.child)
	}
	return res, nil
}

// startTracingInstances starts one profilecache per tracing mode, logged in
// as alice.
func startTracingInstances(ctx context.Context, cfg config, p *procs, rds *privateRedis, ours, sink string) ([]*server, error) {
	var inst []*server
	for i, m := range tracingModes {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		env := oursEnv(cfg, addr, rds.addr)
		if m.env != nil {
			env = append(append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+sink, "OTEL_SERVICE_NAME=profilecache-bench"), m.env...)
		}
		c, err := p.start(fmt.Sprintf("profilecache-tracing-%d", i), ours, nil, env)
		if err != nil {
			return nil, err
		}
		s := &server{name: srvOurs, url: "http://" + addr, child: c, auth: map[string][]string{}}
		if err := waitHTTP(ctx, c, s.url+"/healthz"); err != nil {
			return nil, err
		}
		if s.auth["alice"], err = login(ctx, s, "alice"); err != nil {
			return nil, err
		}
		inst = append(inst, s)
	}
	return inst, nil
}

func printTracingTable(w io.Writer, tr *tracingResults) {
	bare := tr.runs[len(tr.runs)-1]
	fmt.Fprintf(w, "\nTracing (issue 17): %s, OTLP/HTTP to a discarding sink; ratios are medians of per-round ratios to bare\n\n", tracingCase.name)
	fmt.Fprintln(w, "| tracing | req/s | p99 | × bare | × bare by CPU |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for i, name := range tr.names {
		a := aggregate(tr.runs[i])
		fmt.Fprintf(w, "| %s | %.0f | %v | %.2f | %.2f |\n", name, a.reqPerSec, a.p99.Round(time.Microsecond),
			rpsRatio(tr.runs[i], bare), cpuRatio(tr.runs[i], bare))
	}
	a := aggregate(bare)
	fmt.Fprintf(w, "| bare | %.0f | %v | 1.00 | 1.00 |\n", a.reqPerSec, a.p99.Round(time.Microsecond))
}
