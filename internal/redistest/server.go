package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// readyTimeout bounds the wait for a fresh redis-server to answer PING.
const readyTimeout = 10 * time.Second

// maxLogDump keeps a failed test's output readable.
const maxLogDump = 64 << 10

// Server is one Redis for tests: a redis-server process owned by the test,
// or the external server named by REDIS_TEST_URL.
type Server struct {
	// Addr is host:port, for clients and for messages.
	Addr string

	tb  testing.TB
	url string // set for an external server

	bin     string
	port    int
	dir     string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

func startLocal(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if testing.Short() {
			tb.Skip("redistest: redis-server not found; skipped in -short mode")
		}
		tb.Fatalf("redistest: redis-server not found: run `make test`, which installs it (or set %s)", EnvURL)
	}
	dir := tb.TempDir()
	s := &Server{tb: tb, bin: bin, dir: dir, logPath: filepath.Join(dir, "redis.log")}
	// Another process can take the free port before redis binds it: retry.
	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err == nil {
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
			err = s.start()
		}
		if err == nil {
			break
		}
		if attempt == 3 {
			s.dumpLog()
			tb.Fatalf("redistest: start redis-server: %v", err)
		}
	}
	tb.Cleanup(func() {
		s.stop()
		if tb.Failed() {
			s.dumpLog()
		}
	})
	return s
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
	s.stop()
	if err := s.start(); err != nil {
		s.dumpLog()
		tb.Fatalf("redistest: restart redis-server on %s: %v", s.Addr, err)
	}
}

func (s *Server) start() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // killed on purpose or crashed: the log tells which
		logf.Close()
		close(exited)
	}()
	if err := waitReady(s.Addr, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return err
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

func (s *Server) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

func (s *Server) dumpLog() {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		s.tb.Logf("redistest: read redis-server log: %v", err)
		return
	}
	if len(b) > maxLogDump {
		b = b[len(b)-maxLogDump:]
	}
	s.tb.Logf("redis-server log (%s):\n%s", s.Addr, b)
}

// waitReady polls with a raw PING: no client library retries to hide why
// the server is not there.
func waitReady(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("redis-server exited during start (see its log)")
		default:
		}
		if last = ping(addr); last == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no PONG from %s within %v: %w", addr, readyTimeout, last)
}

func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
