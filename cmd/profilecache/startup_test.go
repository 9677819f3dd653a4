package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestStartupFailures: what stops the program at start does so with one
// clear line on stderr and exit status 1, before it listens. That includes
// a Redis that does not answer: the program refuses to start rather than
// serve 503s (an orchestrator restarts it; /readyz covers Redis failing
// later).
func TestStartupFailures(t *testing.T) {
	secret := strings.Repeat("s", 32)
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"ShortSecret", map[string]string{"SESSION_SECRET": strings.Repeat("s", 31)}, "SESSION_SECRET: must be at least 32 bytes, got 31"},
		{"ShortPreviousSecret", map[string]string{"SESSION_SECRET": secret, "SESSION_SECRET_PREVIOUS": "old"}, "SESSION_SECRET_PREVIOUS: must be at least 32 bytes"},
		{"RedisDown", map[string]string{"SESSION_SECRET": secret, "REDIS_URL": "redis://" + closedPort(t)}, "redis: connect to 127.0.0.1:"},
		{"RedisURLWithPassword", map[string]string{"SESSION_SECRET": secret, "REDIS_URL": "redis://u:hunter2@" + closedPort(t) + "/0"}, "redis: connect to"},
		{"SentinelsDown", map[string]string{"SESSION_SECRET": secret, "REDIS_URL": "redis://" + closedPort(t) + "?master_set=mymaster"}, `redis: connect to master "mymaster" through sentinels 127.0.0.1:`},
		{"SentinelTLS", map[string]string{"SESSION_SECRET": secret, "REDIS_URL": "rediss://" + closedPort(t) + "?master_set=mymaster"}, "rediss:// with master_set (TLS through Sentinel) is not supported"},
		{"BadRedisTimeout", map[string]string{"REDIS_TIMEOUT": "soon"}, `REDIS_TIMEOUT: invalid duration "soon"`},
		{"ZeroRedisTimeout", map[string]string{"REDIS_TIMEOUT": "0s"}, "REDIS_TIMEOUT: must be positive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"ADDR": "127.0.0.1:0"}
			for k, v := range tt.env {
				env[k] = v
			}
			// Through run(), as main calls it.
			var logs bytes.Buffer
			err := run(context.Background(), nil, func(k string) string { return env[k] }, &logs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run() = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(logs.String(), "listening") {
				t.Errorf("the program listened before failing:\n%s", logs.String())
			}

			// And as a process: exit status 1 and one line on stderr.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0])
			cmd.Env = append(os.Environ(), runMainEnv+"=1")
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err = cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "profilecache: ") || !strings.Contains(last, tt.want) {
				t.Errorf("last stderr line = %q, want \"profilecache: ...%s...\"", last, tt.want)
			}
			for _, l := range lines[:len(lines)-1] {
				if !strings.HasPrefix(l, "{") { // only JSON log lines may come before it
					t.Errorf("stderr has a stray line %q", l)
				}
			}
			if strings.Contains(stderr.String(), "hunter2") {
				t.Error("stderr shows the Redis password")
			}
		})
	}
}
