// Package composetest runs the repository's docker-compose.yml for tests, as
// a user would run it, on a machine that may have nothing but Go:
//
//   - scripts/ensure-deps.sh docker installs Debian's docker.io and
//     debootstrap when they are missing;
//   - scripts/docker-plugins.sh builds the Compose and buildx CLI plugins
//     from the Go module proxy (cached);
//   - a running Docker engine is used, else a dockerd is started and, at the
//     end, stopped again (only that one);
//   - deploy/standins/build.sh makes local stand-ins for the official images
//     the files name when they are not there (no registry answers here); they
//     are kept for the next run;
//   - each Project has a name of its own and is taken down with its volumes
//     when the test ends, failed or not.
package composetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/modroot"
)

// daemonReadyTimeout bounds the wait for a dockerd this package started to
// answer; generous, because the machines are small and busy.
const daemonReadyTimeout = 90 * time.Second

// commandTimeout bounds one docker or compose command (a build included),
// so that a wedged engine fails the test instead of hanging it.
const commandTimeout = 15 * time.Minute

// scriptTimeout bounds one setup script: building both plugins from cold
// caches took 23 minutes on a 2-core machine shared with three others.
const scriptTimeout = 35 * time.Minute

// Engine is a Docker engine with the Compose plugin, ready for projects.
type Engine struct {
	// Root is the repository root (where go.mod is).
	Root string
	// Docker is the docker CLI.
	Docker string
	// Config is the DOCKER_CONFIG directory that holds the CLI plugins.
	Config string
}

// CacheDir is where the plugins (and the scripts' scratch files) are kept
// between runs: $PROFILECACHE_CACHE, else ~/.cache/profilecache.
func CacheDir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("PROFILECACHE_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(d, "profilecache")
}

// Start installs what is missing, makes sure a Docker engine runs (starting
// one that it stops when tb ends) and that every image the files name
// exists. Each step logs how long it took.
func Start(tb testing.TB) *Engine {
	tb.Helper()
	root := modroot.Dir(tb)
	cache := CacheDir(tb)
	e := &Engine{Root: root, Config: filepath.Join(cache, "docker")}

	step(tb, "install docker.io and debootstrap if missing", func() error {
		return script(filepath.Join(root, "scripts", "ensure-deps.sh"), nil, "docker")
	})
	// The plugins are compiled (CPU) while the engine starts and the
	// stand-ins are made (mostly downloads and dpkg): side by side.
	plugins := make(chan error, 1)
	pluginsBegan := time.Now()
	go func() {
		plugins <- script(filepath.Join(root, "scripts", "docker-plugins.sh"), nil, e.Config)
	}()
	docker, err := lookPath("docker")
	if err != nil {
		tb.Fatalf("composetest: %v (scripts/ensure-deps.sh docker should have installed docker.io)", err)
	}
	e.Docker = docker
	e.ensureDaemon(tb)
	step(tb, "build the stand-ins for missing official images", func() error {
		return script(filepath.Join(root, "deploy", "standins", "build.sh"), []string{"DOCKER=" + e.Docker})
	})
	if err := <-plugins; err != nil {
		tb.Fatalf("composetest: build the Compose and buildx plugins: %v", err)
	}
	tb.Logf("build the Compose and buildx plugins if missing: %.1f s (alongside)", time.Since(pluginsBegan).Seconds())
	return e
}

// step runs f, logging its duration, and fails tb if it fails.
func step(tb testing.TB, what string, f func() error) {
	tb.Helper()
	start := time.Now()
	if err := f(); err != nil {
		tb.Fatalf("composetest: %s: %v", what, err)
	}
	tb.Logf("%s: %.1f s", what, time.Since(start).Seconds())
}

// script runs a repository script with the test's environment plus env; its
// output goes into the error when it fails.
func script(path string, env []string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", path, strings.Join(args, " "), err, tail(out.String(), 4000))
	}
	return nil
}

// lookPath finds name on PATH or in the sbin directories a non-root PATH
// may lack.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// Env is the environment for docker commands: the plugins' DOCKER_CONFIG.
func (e *Engine) Env() []string {
	return append(os.Environ(), "DOCKER_CONFIG="+e.Config)
}

// Run runs the docker CLI and returns its standard output; the error
// carries standard error.
func (e *Engine) Run(ctx context.Context, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Docker, args...)
	cmd.Env = append(e.Env(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, tail(stderr.String(), 4000))
	}
	return stdout.String(), nil
}

// Must is Run that fails tb on error.
func (e *Engine) Must(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := e.Run(context.Background(), nil, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func (e *Engine) answers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.Run(ctx, nil, "version", "--format", "{{.Server.Version}}")
	return err == nil
}

// ensureDaemon uses the engine that answers, or starts dockerd and stops
// it when tb ends.
func (e *Engine) ensureDaemon(tb testing.TB) {
	tb.Helper()
	if e.answers() {
		tb.Log("using the Docker engine that runs")
		return
	}
	dockerd, err := lookPath("dockerd")
	if err != nil {
		tb.Fatalf("composetest: %v", err)
	}
	logf, err := os.CreateTemp("", "composetest-dockerd-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command(dockerd)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A crashed test run must not leave the engine behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("composetest: start dockerd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		// SIGTERM: dockerd stops its containers and its containerd.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			tb.Errorf("composetest: dockerd did not stop within 60 s of SIGTERM; killed it")
		}
		if tb.Failed() {
			b, _ := os.ReadFile(logf.Name())
			tb.Logf("dockerd log (tail):\n%s", tail(string(b), 4000))
		}
		logf.Close()
		os.Remove(logf.Name())
	})
	deadline := time.Now().Add(daemonReadyTimeout)
	for !e.answers() {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logf.Name())
			tb.Fatalf("composetest: dockerd exited (%v):\n%s", err, tail(string(b), 4000))
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("composetest: dockerd does not answer after %s", daemonReadyTimeout)
		}
	}
	tb.Logf("started dockerd (pid %d): %.1f s; it is stopped at the end", cmd.Process.Pid, time.Since(start).Seconds())
}

// ImageID returns the id of the image ref, or "" if there is none.
func (e *Engine) ImageID(ref string) string {
	out, err := e.Run(context.Background(), nil, "image", "inspect", "--format", "{{.Id}}", ref)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// Project is one compose project: the repository's files plus overrides,
// under a name of its own.
type Project struct {
	*Engine
	Name  string
	files []string
	env   []string
}

// NewProject returns a project of the given compose files (the first one
// sets the project directory) with env added to every compose command's
// environment. When tb ends it is taken down with its volumes.
func (e *Engine) NewProject(tb testing.TB, prefix string, files []string, env map[string]string) *Project {
	tb.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	p := &Project{Engine: e, Name: prefix + hex.EncodeToString(b), files: files}
	for k, v := range env {
		p.env = append(p.env, k+"="+v)
	}
	slices.Sort(p.env)
	tb.Cleanup(func() {
		if tb.Failed() {
			p.Dump(tb)
		}
		if err := p.Down(); err != nil {
			tb.Errorf("composetest: %v", err)
		}
	})
	return p
}

// Compose runs `docker compose` on the project.
func (p *Project) Compose(ctx context.Context, args ...string) (string, error) {
	return p.Run(ctx, p.env, p.composeArgs(args)...)
}

// Command returns `docker compose args...` on the project, not started, for
// a command whose output is read as it comes (logs -f, redis-cli monitor).
func (p *Project) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p.Docker, p.composeArgs(args)...)
	cmd.Env = append(p.Env(), p.env...)
	return cmd
}

func (p *Project) composeArgs(args []string) []string {
	full := []string{"compose", "--project-name", p.Name, "--project-directory", filepath.Dir(p.files[0])}
	for _, f := range p.files {
		full = append(full, "--file", f)
	}
	return append(full, args...)
}

// MustCompose is Compose that fails tb on error.
func (p *Project) MustCompose(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := p.Compose(context.Background(), args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Down removes the project's containers, networks and volumes, and checks
// that none is left.
func (p *Project) Down() error {
	if _, err := p.Compose(context.Background(), "down", "--volumes", "--remove-orphans", "--timeout", "30"); err != nil {
		return err
	}
	left, err := p.Leftovers()
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("after down -v, project %s still has %v", p.Name, left)
	}
	return nil
}

// Leftovers lists the containers, networks and volumes that carry the
// project's label.
func (p *Project) Leftovers() ([]string, error) {
	filter := "label=com.docker.compose.project=" + p.Name
	var left []string
	for _, kind := range []struct{ what, format string }{
		{"container", "{{.Names}}"}, {"network", "{{.Name}}"}, {"volume", "{{.Name}}"},
	} {
		args := []string{kind.what, "ls", "--filter", filter, "--format", kind.format}
		if kind.what == "container" {
			args = []string{"container", "ls", "--all", "--filter", filter, "--format", kind.format}
		}
		out, err := p.Run(context.Background(), nil, args...)
		if err != nil {
			return nil, err
		}
		for _, name := range strings.Fields(out) {
			left = append(left, kind.what+" "+name)
		}
	}
	return left, nil
}

// ContainerID returns the id of the service's (first) container.
func (p *Project) ContainerID(tb testing.TB, service string) string {
	tb.Helper()
	id := strings.TrimSpace(p.MustCompose(tb, "ps", "--all", "--quiet", service))
	if id == "" || strings.Contains(id, "\n") {
		tb.Fatalf("composetest: service %s: containers %q, want one", service, id)
	}
	return id
}

// Inspect returns `docker inspect --format format` of the service's
// container.
func (p *Project) Inspect(tb testing.TB, service, format string) string {
	tb.Helper()
	return strings.TrimSpace(p.Must(tb, "inspect", "--format", format, p.ContainerID(tb, service)))
}

// Logs returns the service's log, standard output and error.
func (p *Project) Logs(tb testing.TB, service string) string {
	tb.Helper()
	return p.MustCompose(tb, "logs", "--no-color", "--no-log-prefix", service)
}

// Dump logs the state of the project's containers and the tail of their
// logs, if it has any.
func (p *Project) Dump(tb testing.TB) {
	tb.Helper()
	if out, err := p.Compose(context.Background(), "ps", "--all", "--quiet"); err != nil || strings.TrimSpace(out) == "" {
		return
	}
	if out, err := p.Compose(context.Background(), "ps", "--all"); err == nil {
		tb.Logf("docker compose ps --all:\n%s", out)
	}
	if out, err := p.Compose(context.Background(), "logs", "--no-color", "--tail", "60"); err == nil {
		tb.Logf("docker compose logs --tail 60:\n%s", tail(out, 16000))
	}
}

// WaitHealthy waits until every service's container reports healthy.
func (p *Project) WaitHealthy(tb testing.TB, timeout time.Duration, services ...string) {
	tb.Helper()
	args := append([]string{"up", "--detach", "--no-recreate", "--no-build", "--wait", "--wait-timeout", fmt.Sprint(int(timeout.Seconds()))}, services...)
	if _, err := p.Compose(context.Background(), args...); err != nil {
		tb.Fatalf("composetest: waiting for %v to be healthy: %v", services, err)
	}
}

// Health returns each service's container state and health.
func (p *Project) Health(tb testing.TB) map[string]string {
	tb.Helper()
	out := p.MustCompose(tb, "ps", "--all", "--format", "{{.Service}} {{.State}} {{.Health}}")
	m := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		svc, rest, ok := strings.Cut(line, " ")
		if ok {
			m[svc] = rest
		}
	}
	return m
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
