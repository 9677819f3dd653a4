// Package browsertest starts headless Chromium for end-to-end tests driven
// with chromedp. `make test` installs Debian's chromium when it is missing.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// StartTimeout bounds Chromium's start; generous, because the test machines
// are small and busy.
const StartTimeout = 90 * time.Second

// Bin returns the Chromium binary, failing the test with a clear message
// when there is none (or skipping it under -short).
func Bin(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if testing.Short() {
		tb.Skip("browsertest: chromium not found; skipped in -short mode")
	}
	tb.Fatal("browsertest: chromium not found: run `make test`, which installs it (scripts/ensure-deps.sh chromium)")
	return ""
}

// New starts a fresh headless Chromium (its own empty profile) and returns
// a chromedp context for one tab in it. The browser ends with the test.
// Derive a context with a timeout from it for each step: the browser's own
// life must not be bound to such a timeout (chromedp docs, example 21).
func New(tb testing.TB) context.Context {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Bin(tb)),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.NoSandbox, // root in a container has no user namespace sandbox
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// This machine has no network but loopback: without these,
		// Chromium keeps trying Google's services.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	tb.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// Start the browser now, so a missing or broken Chromium fails here
	// with a clear message rather than inside the first step.
	startCtx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			tb.Fatalf("browsertest: start chromium: %v", err)
		}
	case <-startCtx.Done():
		tb.Fatalf("browsertest: chromium did not start within %v", StartTimeout)
	}
	return ctx
}
