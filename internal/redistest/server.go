package redistest

import (
	"os/exec"
	"testing"

	"github.com/profilecache/profilecache/internal/redisproc"
)

// maxLogDump keeps a failed test's output readable.
const maxLogDump = 64 << 10

// readyTimeout bounds waits for a server to become ready.
const readyTimeout = redisproc.ReadyTimeout

// Server is one Redis for tests: a redis-server process owned by the test,
// or the external server named by REDIS_TEST_URL.
type Server struct {
	// Addr is host:port, for clients and for messages.
	Addr string

	tb   testing.TB
	url  string          // set for an external server
	proc *redisproc.Proc // nil for an external server
}

func startLocal(tb testing.TB) *Server {
	tb.Helper()
	s, err := launch(tb, tb.TempDir(), nil)
	if err != nil {
		tb.Fatalf("redistest: start redis-server: %v", err)
	}
	s.tb = tb
	tb.Cleanup(func() {
		s.stop()
		if tb.Failed() {
			s.dumpLog(tb)
		}
	})
	return s
}

// launch starts a redis-server with its files in dir (see redisproc.Start),
// dumping its log into tb if that fails.
func launch(tb testing.TB, dir string, extra func(port int) ([]string, error)) (*Server, error) {
	tb.Helper()
	p, err := redisproc.Start(redisproc.Options{Bin: lookPath(tb, "redis-server"), Dir: dir, Extra: extra})
	if err != nil {
		if p != nil {
			(&Server{Addr: p.Addr, proc: p}).dumpLog(tb)
		}
		return nil, err
	}
	return &Server{Addr: p.Addr, tb: tb, proc: p}, nil
}

// lookPath finds a program the tests need, or fails tb saying how to get it.
func lookPath(tb testing.TB, name string) string {
	tb.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if testing.Short() {
			tb.Skipf("redistest: %s not found; skipped in -short mode", name)
		}
		tb.Fatalf("redistest: %s not found: run `make test`, which installs it (or set %s)", name, EnvURL)
	}
	return bin
}

// Stop kills the server, as a crash or an outage would. Calling it twice is
// fine. On an external server the test is skipped: it cannot be stopped.
func (s *Server) Stop() {
	s.tb.Helper()
	if s.url != "" {
		s.tb.Skipf("redistest: cannot stop the external server of %s", EnvURL)
	}
	s.stop()
}

// Restart starts the server again on the same address after Stop (or stops
// it first). It comes back empty: persistence is off.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	if s.url != "" {
		tb.Skipf("redistest: cannot restart the external server of %s", EnvURL)
	}
	if err := s.proc.Restart(); err != nil {
		s.dumpLog(tb)
		tb.Fatalf("redistest: %v", err)
	}
}

// running: an external server always counts as running.
func (s *Server) running() bool { return s.proc == nil || s.proc.Running() }

func (s *Server) stop() {
	if s.proc != nil {
		s.proc.Stop()
	}
}

func (s *Server) dumpLog(tb testing.TB) { s.dumpLogTail(tb, maxLogDump) }

func (s *Server) dumpLogTail(tb testing.TB, max int) {
	if s.proc == nil {
		return
	}
	b, err := s.proc.LogTail(max)
	if err != nil {
		tb.Logf("redistest: read redis-server log: %v", err)
		return
	}
	tb.Logf("redis-server log (%s):\n%s", s.Addr, b)
}

// command sends one raw command (see redisproc.Command).
func command(addr string, args ...string) (string, error) { return redisproc.Command(addr, args...) }

// freePort returns a free loopback port.
func freePort() (int, error) { return redisproc.FreePort() }
