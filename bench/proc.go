package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is one process the harness started: a server or redis-server.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // set before exited closes
}

// procs tracks every child so that one call ends them all, whatever way the
// harness leaves (error, Ctrl-C, panic).
type procs struct {
	mu       sync.Mutex
	children []*child
	dir      string
}

// start runs name with args and env (added to the harness's own), logging
// to a file in the work dir. The child dies with the harness (Pdeathsig).
func (p *procs) start(name, bin string, args, env []string) (*child, error) {
	logPath := filepath.Join(p.dir, name+".log")
	// O_APPEND lets truncateLog empty the file under the running child.
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	p.mu.Lock()
	p.children = append(p.children, c)
	p.mu.Unlock()
	return c, nil
}

// stopAll ends every child: SIGTERM, then SIGKILL after a grace period.
func (p *procs) stopAll() {
	p.mu.Lock()
	children := p.children
	p.children = nil
	p.mu.Unlock()
	for _, c := range children {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range children {
		select {
		case <-c.exited:
		case <-time.After(3 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	}
}

// logTail is the end of the child's log, for error messages.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}

// truncateLog empties the log: profilecache logs every request, and a run
// at tens of thousands of requests per second writes hundreds of MB.
func (c *child) truncateLog() { _ = os.Truncate(c.logPath, 0) }

// failed says whether the child has exited, and how.
func (c *child) failed() error {
	select {
	case <-c.exited:
		return fmt.Errorf("%s exited (%v); its log ends:\n%s", c.name, c.err, c.logTail())
	default:
		return nil
	}
}

// waitHTTP polls url until it answers 200, the child dies or time runs out.
func waitHTTP(ctx context.Context, c *child, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := c.failed(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no 200 from %s within 30s (last error %v); its log ends:\n%s", c.name, url, err, c.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a loopback address that was free a moment ago. A child
// that then fails to bind it says so in its log, which the harness prints.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// checkFree fails clearly when addr is taken, for addresses given by flag.
func checkFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("address %s is not free: %w", addr, err)
	}
	return ln.Close()
}

// portOf is the port of host:port.
func portOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

var errInterrupted = errors.New("interrupted")

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// cpuTime is the CPU time (user + system, all threads) the child has used.
func (c *child) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) of /proc/PID/stat.
// The command name (field 2) may contain spaces, so fields are counted
// from its closing parenthesis.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %q: no command name", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat %q: too few fields", stat)
	}
	var ticks int64
	for _, s := range f[11:13] { // fields 14 and 15 overall
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat %q: %w", stat, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
