package redistest

import (
	"syscall"
	"testing"
)

// Pause freezes the server (SIGSTOP): connections stay open and nothing
// answers, as with a stalled host or a network black hole, unlike Stop,
// whose refused connections fail fast. Resume, Stop or the end of the
// test thaws it.
func (s *Server) Pause(tb testing.TB) {
	tb.Helper()
	s.signal(tb, syscall.SIGSTOP)
	tb.Cleanup(func() { s.Resume(tb) })
}

// Resume thaws a paused server; resuming a running one is a no-op.
func (s *Server) Resume(tb testing.TB) {
	tb.Helper()
	s.signal(tb, syscall.SIGCONT)
}

func (s *Server) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	if s.url != "" {
		tb.Skipf("redistest: cannot signal the external server of %s", EnvURL)
	}
	if err := s.proc.Signal(sig); err != nil {
		tb.Fatalf("redistest: signal %v to redis-server on %s: %v", sig, s.Addr, err)
	}
}
