// Package redistest gives tests a real Redis: a redis-server process of
// their own on a free loopback port, or the server named by REDIS_TEST_URL;
// and a real 3-master Redis Cluster on loopback (StartCluster, or the one
// SharedCluster starts per test binary). Targets runs one test against
// both, so that a storage suite is one suite with two targets.
//
// Storage code is proven against a real server, never an in-memory fake:
// client-side caching, invalidation and Lua semantics are what is under test.
//
// With REDIS_TEST_URL set, every Start/New flushes that database, so run
// `go test -p 1` and keep such tests sequential.
package redistest

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/redis/rueidis"
)

// EnvURL names the environment variable that points the tests at an
// existing Redis instead of starting one.
const EnvURL = "REDIS_TEST_URL"

// New returns a client with default options (client-side caching on) to a
// fresh Redis that lives as long as tb. Tests isolate their data with fresh
// uuid.New() users.
func New(tb testing.TB) rueidis.Client {
	tb.Helper()
	return Start(tb).Client(tb)
}

// Start returns a running server for tb. It is stopped, and its log dumped
// if tb failed, when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if url := os.Getenv(EnvURL); url != "" {
		return external(tb, url)
	}
	return startLocal(tb)
}

// Client returns one more independent client to s (its own connections and
// its own client-side cache), closed when tb ends. Options adjust the
// defaults, e.g. func(o *rueidis.ClientOption) { o.DisableCache = true }.
func (s *Server) Client(tb testing.TB, opts ...func(*rueidis.ClientOption)) rueidis.Client {
	tb.Helper()
	opt := s.clientOption()
	for _, f := range opts {
		f(&opt)
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		tb.Fatalf("redistest: connect to %s: %v", s.Addr, err)
	}
	tb.Cleanup(c.Close)
	return c
}

// external is a server the test does not own: it can be flushed, not stopped.
func external(tb testing.TB, url string) *Server {
	tb.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		tb.Fatalf("redistest: parse %s: %v", EnvURL, err)
	}
	s := &Server{Addr: opt.InitAddress[0], tb: tb, url: url}
	c := s.Client(tb)
	if err := c.Do(context.Background(), c.B().Flushdb().Build()).Error(); err != nil {
		tb.Fatalf("redistest: FLUSHDB on %s: %v", EnvURL, err)
	}
	return s
}

func (s *Server) clientOption() rueidis.ClientOption {
	if s.url != "" {
		opt, err := rueidis.ParseURL(s.url)
		if err != nil {
			panic(fmt.Sprintf("redistest: %s parsed before: %v", EnvURL, err))
		}
		return opt
	}
	return rueidis.ClientOption{InitAddress: []string{s.Addr}}
}
