package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	serve := func(status int) string {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(status)
		}))
		t.Cleanup(hs.Close)
		return strings.TrimPrefix(hs.URL, "http://")
	}
	// A port nobody listens on: taken, then released.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	tests := []struct {
		name    string
		addr    string
		want    int
		wantMsg string
	}{
		{"healthy", serve(http.StatusOK), 0, ""},
		{"unhealthy", serve(http.StatusServiceUnavailable), 1, "503"},
		{"not listening", closed, 1, "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got := healthcheck(context.Background(), func(k string) string {
				if k == "ADDR" {
					return tc.addr
				}
				return ""
			}, &stderr)
			if got != tc.want || !strings.Contains(stderr.String(), tc.wantMsg) {
				t.Errorf("exit code %d, stderr %q; want %d and %q", got, stderr.String(), tc.want, tc.wantMsg)
			}
		})
	}
}

func TestProbeAddr(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{"0.0.0.0:8080", "127.0.0.1:8080"},
		{":8080", "127.0.0.1:8080"},
		{"[::]:8080", "[::1]:8080"},
		{"127.0.0.1:9000", "127.0.0.1:9000"},
		{"10.1.2.3:80", "10.1.2.3:80"},
	} {
		if got := probeAddr(tc.listen); got != tc.want {
			t.Errorf("probeAddr(%q) = %q, want %q", tc.listen, got, tc.want)
		}
	}
}
