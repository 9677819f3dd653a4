package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/internal/syncbuf"
)

// TestReadTimeoutCutsSlowBody: a client that sends its headers and then
// trickles the body (slowloris on the body) is cut off by READ_TIMEOUT: the
// server closes the connection, answering at most a 408, never a 500 and
// never the handler's normal answer. The body is far too long to finish
// within the test's hang guard, so no timing is asserted.
func TestReadTimeoutCutsSlowBody(t *testing.T) {
	srv := redistest.Start(t)
	env := map[string]string{
		"ADDR":           "127.0.0.1:0",
		"REDIS_URL":      "redis://" + srv.Addr,
		"SESSION_SECRET": strings.Repeat("timeout-secret-", 3),
		"READ_TIMEOUT":   "300ms",
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := &syncbuf.Buffer{}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, func(k string) string { return env[k] }, log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	base := listenURL(t, log, errc)
	u, _ := url.Parse(base)

	for _, tc := range []struct{ name, head string }{
		{"json login", "POST /api/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{\"email\":\""},
		{"form login", "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\nemail="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := fmt.Fprintf(conn, tc.head, u.Host); err != nil {
				t.Fatal(err)
			}
			// One byte every 50 ms: 1 MB would take 14 hours.
			stop := make(chan struct{})
			trickled := make(chan struct{})
			go func() {
				defer close(trickled)
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
					if _, err := conn.Write([]byte("a")); err != nil {
						return
					}
				}
			}()
			defer func() { close(stop); <-trickled }()

			// Hang guard only: READ_TIMEOUT ends this long before.
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestTimeout {
					t.Errorf("status %d, want 408 or no answer", resp.StatusCode)
				}
				if err == nil {
					_, err = br.ReadByte() // the server must close the connection now
				}
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the server kept the slow connection open: READ_TIMEOUT did not cut it off")
			}
			if err == nil {
				t.Fatal("the connection is still open")
			}
		})
	}
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"status":500`) {
			t.Errorf("log: %.300s", line)
		}
	}
}

func TestServerTimeoutsFromConfig(t *testing.T) {
	for _, tc := range []struct {
		name             string
		env              map[string]string
		wantRead         time.Duration
		wantWrite        time.Duration
		wantHeaderWithin time.Duration
		wantErr          string
	}{
		{name: "defaults", wantRead: 30 * time.Second, wantWrite: 30 * time.Second, wantHeaderWithin: 10 * time.Second},
		{name: "write follows BACKEND_TIMEOUT", env: map[string]string{"BACKEND_TIMEOUT": "1m"},
			wantRead: 30 * time.Second, wantWrite: 2*time.Minute + 10*time.Second, wantHeaderWithin: 10 * time.Second},
		{name: "short read", env: map[string]string{"READ_TIMEOUT": "2s", "WRITE_TIMEOUT": "45s"},
			wantRead: 2 * time.Second, wantWrite: 45 * time.Second, wantHeaderWithin: 2 * time.Second},
		{name: "write shorter than a login", env: map[string]string{"WRITE_TIMEOUT": "15s"}, wantErr: "WRITE_TIMEOUT"},
		{name: "zero read", env: map[string]string{"READ_TIMEOUT": "0s"}, wantErr: "READ_TIMEOUT"},
		{name: "bad read", env: map[string]string{"READ_TIMEOUT": "soon"}, wantErr: "READ_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(nil, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := newHTTPServer(cfg, http.NotFoundHandler(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if s.ReadTimeout != tc.wantRead || s.WriteTimeout != tc.wantWrite || s.ReadHeaderTimeout != tc.wantHeaderWithin || s.IdleTimeout == 0 {
				t.Errorf("server timeouts read %v write %v header %v idle %v, want read %v write %v header %v",
					s.ReadTimeout, s.WriteTimeout, s.ReadHeaderTimeout, s.IdleTimeout, tc.wantRead, tc.wantWrite, tc.wantHeaderWithin)
			}
			if s.WriteTimeout <= longestRequest(cfg.BackendTimeout) {
				t.Errorf("WriteTimeout %v would cut off a login that takes %v", s.WriteTimeout, longestRequest(cfg.BackendTimeout))
			}
		})
	}
}
