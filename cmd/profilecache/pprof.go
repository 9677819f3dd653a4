package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofMux serves the runtime profiles. It is a mux of its own, never the
// public handler and never http.DefaultServeMux.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// startPprof serves pprof on cfg.PprofAddr (a loopback address, see
// extConfig.check) when cfg.Pprof is set. stop closes it; addr is where it
// listens ("" when disabled).
func startPprof(cfg Config, logger *slog.Logger) (addr string, stop func(), err error) {
	if !cfg.Pprof {
		return "", func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.PprofAddr)
	if err != nil {
		return "", nil, fmt.Errorf("pprof: listen on %s: %w", cfg.PprofAddr, err)
	}
	srv := &http.Server{
		Handler:           pprofMux(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("pprof: serve", "err", err)
		}
	}()
	addr = ln.Addr().String()
	logger.Warn("pprof enabled: profiles are served on a loopback address only", "url", "http://"+addr+"/debug/pprof/")
	return addr, func() {
		// A running CPU profile or trace would hold Shutdown; Close ends it.
		_ = srv.Close()
		<-done
	}, nil
}
