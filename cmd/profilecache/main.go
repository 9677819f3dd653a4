// Command profilecache serves the structured user-profile cache: login,
// profile pages, the paged JSON API and session management. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/profilecache/profilecache/internal/jsonlog"
	"github.com/profilecache/profilecache/internal/logctx"
	"github.com/profilecache/profilecache/internal/logwriter"
	"github.com/profilecache/profilecache/profile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) == 2 && os.Args[1] == healthcheckFlag {
		os.Exit(healthcheck(ctx, os.Getenv, os.Stderr))
	}
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		// One line, no stack trace: bad configuration is the usual cause.
		fmt.Fprintln(os.Stderr, "profilecache:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	logger, closeLog := newLogger(stderr, cfg.LogLevel)
	defer closeLog()
	a, err := newApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	_, stopPprof, err := startPprof(cfg, logger)
	if err != nil {
		return err
	}
	defer stopPprof()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := newHTTPServer(cfg, a.Handler, logger)
	logger.Info("listening", "url", "http://"+ln.Addr().String())
	for _, d := range profile.DemoAccounts {
		if cfg.BackendURL != "" {
			break // the demo accounts live in the mock CRM only
		}
		logger.Info("demo account", "email", d.Email, "password", d.Password,
			"orders", d.Orders, "invoices", d.Invoices, "inquiries", d.Inquiries)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// newHTTPServer bounds what a slow or idle client can hold: request
// headers (10 s, or READ_TIMEOUT if shorter), the whole request with its
// body (READ_TIMEOUT), the answer (WRITE_TIMEOUT, longer than any
// legitimate request) and an idle keep-alive connection.
func newHTTPServer(cfg Config, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, cfg.ReadTimeout),
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Log batching for files and pipes: lines wait at most logFlushEvery (a
// warning or an error not at all), and a busy server makes a few writes a
// second instead of one per request.
const (
	logBufferSize = 64 << 10
	logFlushEvery = 100 * time.Millisecond
)

// newLogger logs JSON for machines (internal/jsonlog: slog.JSONHandler's
// output, cheaper) and text for people at a terminal, at level and above; lines logged with a request's context carry its
// request_id (internal/logctx). Output to a file or pipe is batched
// (internal/logwriter); close flushes it.
func newLogger(w io.Writer, level slog.Level) (logger *slog.Logger, close func()) {
	opts := &slog.HandlerOptions{Level: level}
	f, ok := w.(*os.File)
	if !ok {
		return slog.New(logctx.NewHandler(jsonlog.New(w, opts))), func() {}
	}
	if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return slog.New(logctx.NewHandler(slog.NewTextHandler(w, opts))), func() {}
	}
	bw := logwriter.New(f, logBufferSize, logFlushEvery)
	h := bw.Handler(jsonlog.New(bw, opts), slog.LevelWarn)
	return slog.New(logctx.NewHandler(h)), func() { _ = bw.Close() }
}
