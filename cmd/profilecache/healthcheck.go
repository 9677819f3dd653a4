package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheckFlag makes the binary probe a running instance instead of
// serving: the container image (distroless) has no shell or curl for a
// HEALTHCHECK, so the binary is its own probe.
const healthcheckFlag = "-healthcheck"

const healthcheckTimeout = 3 * time.Second

// healthcheck GETs /healthz of the instance that listens on ADDR (from the
// same environment the server reads) and returns the exit code: 0 healthy,
// 1 not.
func healthcheck(ctx context.Context, getenv func(string) string, stderr io.Writer) int {
	cfg, err := loadConfig(nil, getenv)
	if err != nil {
		fmt.Fprintln(stderr, "profilecache: healthcheck: config:", err)
		return 1
	}
	url := "http://" + probeAddr(cfg.Addr) + "/healthz"
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "profilecache: healthcheck:", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "profilecache: healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "profilecache: healthcheck: GET %s: %s\n", url, resp.Status)
		return 1
	}
	return 0
}

// probeAddr turns a listen address into one to dial: a wildcard host
// (":8080", "0.0.0.0:8080", "[::]:8080") becomes loopback.
func probeAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
