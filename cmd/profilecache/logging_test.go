package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/redistest"
)

// TestLogsToFileComplete runs the program as a process with stderr on a
// file, where its log is batched: every request line is there once it has
// exited on SIGTERM, the last ones included.
func TestLogsToFileComplete(t *testing.T) {
	srv := redistest.Start(t)
	path := filepath.Join(t.TempDir(), "stderr.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "ADDR=127.0.0.1:0")
	for k, v := range e2eEnv(srv) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	url := waitListening(t, path)
	const n = 25
	for i := range n {
		req, _ := http.NewRequest(http.MethodGet, url+"/api/me", nil)
		req.Header.Set("X-Request-Id", fmt.Sprintf("batch-%d", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	seen := map[string]bool{}
	for _, m := range logLines(t, path) {
		if m["msg"] == "request" {
			seen[fmt.Sprint(m["request_id"])] = true
		}
	}
	for i := range n {
		if id := fmt.Sprintf("batch-%d", i); !seen[id] {
			t.Errorf("no request line for %s", id)
		}
	}
}

// waitListening polls the log file for the "listening" line.
func waitListening(t *testing.T, path string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, m := range logLines(t, path) {
			if m["msg"] == "listening" {
				return fmt.Sprint(m["url"])
			}
		}
	}
	t.Fatal("no listening line")
	return ""
}

func logLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}
