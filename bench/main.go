// Command bench load-tests profilecache side by side with a bare echo
// handler (the ceiling of the HTTP stack) and classic blob sessions (echo v4
// + alexedwards/scs v2 + go-redis, the whole profile as one gob blob per
// session), on a private redis-server, and prints one table with the
// targets of issue 3. Run it with `make bench` from the repository root;
// docs/performance.md shows a run. Then it measures latency at a fixed
// rate with vegeta (fixedrate.go) and one vs two profilecache instances on
// the one Redis (instances.go), and how long Redis stalls while carol logs
// in (stalls.go); docs/scale.md shows those.
//
//	go run . -root .. [-duration 10s] [-warmup 2s] [-rounds 2] [-idle=false]
//	go run . -root .. -only fixed [-rate-alice 3000] [-rate-carol 100]
//	go run . -root .. -only stalls [-stalls-baseline DIR] [-stall-rounds 3]
//
// It is its own Go module so that the service's go.mod stays free of scs
// and go-redis.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "serve-bare":
		err = serveBare(ctx, os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "serve-blob":
		err = serveBlob(ctx, os.Args[2:])
	default:
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", errInterrupted, err)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
