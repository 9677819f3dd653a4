// Package nginxtest runs a real nginx for tests: a non-daemon process with
// its own prefix, pid file, logs and temp directories in a test temp
// directory, listening on free loopback ports. `make test` installs nginx
// (Debian's nginx-light) when it is missing.
package nginxtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// readyTimeout bounds the wait for nginx to listen; generous, because the
// test machines are small and busy.
const readyTimeout = 20 * time.Second

const maxLogDump = 64 << 10

// Server is one running nginx.
type Server struct {
	// Dir is the prefix directory: nginx.conf, logs and temp files.
	Dir string
	// Ports are the loopback ports that the rendered configuration
	// listens on, as chosen before Render ran.
	Ports []int

	tb     testing.TB
	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
}

// Render returns the directives that go inside nginx's http block (after
// the temp paths and logs that Start sets), given the ports to listen on and
// the prefix directory for any file the configuration needs.
type Render func(dir string, ports []int) (string, error)

// Bin returns the nginx binary, failing the test with a clear message when
// there is none (or skipping it under -short).
func Bin(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	// Debian puts it in /usr/sbin, which a non-root PATH may lack.
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if testing.Short() {
		tb.Skip("nginxtest: nginx not found; skipped in -short mode")
	}
	tb.Fatal("nginxtest: nginx not found: run `make test`, which installs it (scripts/ensure-deps.sh nginx)")
	return ""
}

// Start runs nginx with the configuration that render returns, listening
// on nports free loopback ports, and stops it when the test ends. Another
// process can take a free port before nginx binds it, so Start retries.
func Start(tb testing.TB, nports int, render Render) *Server {
	tb.Helper()
	bin := Bin(tb)
	var last error
	for attempt := 1; attempt <= 3; attempt++ {
		s, err := start(tb, bin, nports, render)
		if err == nil {
			tb.Cleanup(func() {
				s.Stop()
				if tb.Failed() {
					s.dumpLog()
				}
			})
			return s
		}
		last = err
	}
	tb.Fatalf("nginxtest: start nginx: %v", last)
	return nil
}

func start(tb testing.TB, bin string, nports int, render Render) (*Server, error) {
	dir := tb.TempDir()
	s := &Server{Dir: dir, tb: tb, exited: make(chan struct{})}
	for range nports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		s.Ports = append(s.Ports, p)
	}
	site, err := render(dir, s.Ports)
	if err != nil {
		return nil, fmt.Errorf("render configuration: %w", err)
	}
	for _, sub := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(mainConf(dir, site)), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "logs", "stderr.log"))
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "logs", "error.log"))
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait() // stopped on purpose or failed: the log tells which
		logf.Close()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		s.Stop()
		s.dumpLog()
		return nil, err
	}
	return s, nil
}

// mainConf wraps the rendered site in a main configuration that keeps every
// file nginx writes inside dir.
func mainConf(dir, site string) string {
	var b strings.Builder
	b.WriteString("daemon off;\nworker_processes 1;\n")
	if os.Geteuid() == 0 {
		// Workers would switch to "nobody", who cannot write into a test's
		// private temp directory.
		b.WriteString("user root root;\n")
	}
	fmt.Fprintf(&b, "pid %s;\n", filepath.Join(dir, "nginx.pid"))
	fmt.Fprintf(&b, "error_log %s info;\n", filepath.Join(dir, "logs", "error.log"))
	b.WriteString("events { worker_connections 256; }\nhttp {\n")
	fmt.Fprintf(&b, "    access_log %s;\n", filepath.Join(dir, "logs", "access.log"))
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "    %s_temp_path %s;\n", t, filepath.Join(dir, "tmp", t))
	}
	b.WriteString(site)
	b.WriteString("\n}\n")
	return b.String()
}

func (s *Server) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for _, p := range s.Ports {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		for {
			select {
			case <-s.exited:
				return errors.New("nginx exited during start (see its log)")
			default:
			}
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("nginx does not listen on %s within %v: %w", addr, readyTimeout, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// Addr returns 127.0.0.1:port for the i-th port.
func (s *Server) Addr(i int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports[i]))
}

// Stop ends nginx (a fast shutdown: SIGTERM) and waits for it; calling it
// twice is fine.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(os.Interrupt) // SIGINT: nginx's fast shutdown
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

// Log returns nginx's error log (start-up problems, upstream errors).
func (s *Server) Log() string {
	var b strings.Builder
	for _, name := range []string{"stderr.log", "error.log"} {
		data, err := os.ReadFile(filepath.Join(s.Dir, "logs", name))
		if err != nil {
			continue
		}
		if len(data) > maxLogDump {
			data = data[len(data)-maxLogDump:]
		}
		fmt.Fprintf(&b, "--- %s\n%s", name, data)
	}
	return b.String()
}

func (s *Server) dumpLog() {
	s.tb.Logf("nginx logs (%s):\n%s", s.Dir, s.Log())
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
