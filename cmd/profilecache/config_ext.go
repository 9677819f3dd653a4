package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/profilecache/profilecache/crm"
	"github.com/profilecache/profilecache/web"
)

// extConfig is the configuration of the real backend, its webhook and
// observability: BACKEND_URL and friends, WEBHOOK_SECRET, PPROF,
// PPROF_ADDR, LOG_LEVEL. Embedded in Config.
type extConfig struct {
	// BackendURL selects the HTTP CRM (package crm); empty: the mock CRM.
	BackendURL            string
	BackendToken          string
	BackendRequestTimeout time.Duration
	BackendAttempts       int
	// WebhookSecret enables POST /internal/profile-changed.
	WebhookSecret string
	// Pprof serves net/http/pprof on PprofAddr, never on Addr.
	Pprof     bool
	PprofAddr string
	LogLevel  slog.Level
}

const defaultPprofAddr = "127.0.0.1:6060"

// register reads the environment through env and adds the flags to fs;
// check runs after fs.Parse.
func (x *extConfig) register(env func(name string, parse func(string) error), fs *flag.FlagSet) {
	x.BackendRequestTimeout = crm.DefaultTimeout
	x.BackendAttempts = crm.DefaultMaxAttempts
	x.PprofAddr = defaultPprofAddr
	x.LogLevel = slog.LevelInfo

	set := func(dst *string) func(string) error { return func(v string) error { *dst = v; return nil } }
	env("BACKEND_URL", set(&x.BackendURL))
	env("BACKEND_TOKEN", set(&x.BackendToken))
	env("BACKEND_REQUEST_TIMEOUT", func(v string) (err error) {
		if x.BackendRequestTimeout, err = time.ParseDuration(v); err != nil || x.BackendRequestTimeout <= 0 {
			return fmt.Errorf("invalid duration %q (a positive one, e.g. 2s)", v)
		}
		return nil
	})
	env("BACKEND_ATTEMPTS", func(v string) (err error) {
		if x.BackendAttempts, err = strconv.Atoi(v); err != nil || x.BackendAttempts < 1 || x.BackendAttempts > 10 {
			return fmt.Errorf("invalid attempt count %q (1 to 10; 1 means no retry)", v)
		}
		return nil
	})
	env("WEBHOOK_SECRET", set(&x.WebhookSecret))
	env("PPROF", func(v string) (err error) {
		if x.Pprof, err = strconv.ParseBool(v); err != nil {
			return fmt.Errorf("invalid boolean %q", v)
		}
		return nil
	})
	env("PPROF_ADDR", set(&x.PprofAddr))
	env("LOG_LEVEL", func(v string) error {
		if err := x.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("invalid level %q (debug, info, warn or error)", v)
		}
		return nil
	})
	fs.StringVar(&x.BackendURL, "backend-url", x.BackendURL, "CRM base URL; empty uses the mock CRM (env BACKEND_URL)")
	fs.BoolVar(&x.Pprof, "pprof", x.Pprof, "serve net/http/pprof on -pprof-addr (env PPROF)")
	fs.StringVar(&x.PprofAddr, "pprof-addr", x.PprofAddr, "pprof listen address, keep it on loopback (env PPROF_ADDR)")
}

func (x *extConfig) check() []error {
	var errs []error
	if x.BackendURL != "" {
		u, err := url.Parse(x.BackendURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, errors.New("BACKEND_URL: want http(s)://host[:port][/path]"))
		}
	}
	if x.WebhookSecret != "" && len(x.WebhookSecret) < web.MinWebhookSecretLen {
		errs = append(errs, fmt.Errorf("WEBHOOK_SECRET: must be at least %d bytes, got %d", web.MinWebhookSecretLen, len(x.WebhookSecret)))
	}
	if x.Pprof {
		host, _, err := net.SplitHostPort(x.PprofAddr)
		if err != nil {
			errs = append(errs, fmt.Errorf("PPROF_ADDR: %q is not host:port", x.PprofAddr))
		} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			// The profiler shows memory contents and stacks: never public.
			errs = append(errs, fmt.Errorf("PPROF_ADDR: %q is not a loopback address (use 127.0.0.1:PORT)", x.PprofAddr))
		}
	}
	return errs
}

// redactedBackend is BACKEND_URL fit for the log, or "(mock)".
func (x *extConfig) redactedBackend() string {
	if x.BackendURL == "" {
		return "(mock)"
	}
	u, err := url.Parse(x.BackendURL)
	if err != nil {
		return "(unparsable)"
	}
	return strings.TrimSuffix(u.Redacted(), "/")
}
