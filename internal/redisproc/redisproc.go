// Package redisproc runs redis-server processes on free loopback ports:
// start, stop (as a crash would), restart on the same address, freeze. It
// is what the test helper internal/redistest and the soak command share;
// it knows nothing of testing.
package redisproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ReadyTimeout bounds the wait for a fresh redis-server to answer PING.
const ReadyTimeout = 10 * time.Second

// Options configure Start.
type Options struct {
	// Bin is the redis-server binary. Default: "redis-server" on PATH.
	Bin string
	// Dir holds the server's files and log. Required.
	Dir string
	// Extra, if set, returns more redis-server arguments once the port is
	// known (e.g. cluster mode).
	Extra func(port int) ([]string, error)
	// Conf, if set, is a config file named first on the command line, as
	// redis-server wants it; Sentinel needs one it can rewrite.
	Conf string
}

// Proc is one redis-server process with persistence off: a restart brings
// it back empty, as an in-memory Redis that crashed.
type Proc struct {
	// Addr is 127.0.0.1:port.
	Addr string

	bin     string
	port    int
	dir     string
	conf    string
	logPath string
	extra   []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// Start starts redis-server on a free port and waits until it answers PING.
// On error the returned Proc, if not nil, has a log worth reading.
func Start(opts Options) (*Proc, error) {
	bin := opts.Bin
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, err
		}
	}
	p := &Proc{bin: bin, dir: opts.Dir, conf: opts.Conf, logPath: filepath.Join(opts.Dir, "redis.log")}
	// Another process can take the free port before redis binds it: retry.
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if p.port, err = FreePort(); err != nil {
			continue
		}
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
		if opts.Extra != nil {
			if p.extra, err = opts.Extra(p.port); err != nil {
				continue
			}
		}
		if err = p.start(); err == nil {
			return p, nil
		}
	}
	return p, err
}

func (p *Proc) start() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var args []string
	if p.conf != "" {
		args = append(args, p.conf)
	}
	args = append(args,
		"--port", strconv.Itoa(p.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", p.dir,
	)
	args = append(args, p.extra...)
	cmd := exec.Command(p.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
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
	if err := waitReady(p.Addr, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return err
	}
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	return nil
}

// Stop kills the server, as a crash or an outage would. Calling it twice
// is fine.
func (p *Proc) Stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd, p.exited = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart starts the server again on the same address (stopping it first
// if it runs). It comes back empty.
func (p *Proc) Restart() error {
	p.Stop()
	if err := p.start(); err != nil {
		return fmt.Errorf("restart redis-server on %s: %w", p.Addr, err)
	}
	return nil
}

// Running reports whether the server was started and not stopped since
// (it may still have crashed on its own).
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Signal sends sig to the running server; a stopped one is left alone.
func (p *Proc) Signal(sig os.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	return cmd.Process.Signal(sig)
}

// LogTail returns the last max bytes of the server's log.
func (p *Proc) LogTail(max int) ([]byte, error) {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return b, nil
}

// waitReady polls with a raw PING: no client library retries to hide why
// the server is not there.
func waitReady(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(ReadyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("redis-server exited during start (see its log)")
		default:
		}
		// NOAUTH: up, and wants a password (a sentinel with requirepass).
		if last = Ping(addr); last == nil || strings.HasPrefix(last.Error(), "NOAUTH") {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no PONG from %s within %v: %w", addr, ReadyTimeout, last)
}

// Ping sends PING on a fresh connection and wants PONG.
func Ping(addr string) error {
	out, err := Command(addr, "PING")
	if err != nil {
		return err
	}
	if out != "PONG" {
		return fmt.Errorf("PING answered %q", out)
	}
	return nil
}

// FreePort returns a loopback port nobody listened on a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Command sends one command in RESP to addr on a fresh connection and
// returns a simple, bulk or integer reply as a string.
func Command(addr string, args ...string) (string, error) {
	out, err := Pipeline(addr, args)
	if err != nil {
		return "", err
	}
	return out[0], nil
}

// Pipeline sends commands in RESP to addr on one fresh connection (e.g.
// READONLY, then a read from a cluster replica) and returns their simple,
// bulk or integer replies as strings; the first error reply fails it.
func Pipeline(addr string, cmds ...[]string) ([]string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, args := range cmds {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	out := make([]string, len(cmds))
	for i := range cmds {
		if out[i], err = readReply(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad bulk reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}
