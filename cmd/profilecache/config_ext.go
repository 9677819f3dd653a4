package main

import (
	"errors"
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

// vars are extConfig's entries in the registry (config_vars.go); check runs
// once they are parsed.
func (x *extConfig) vars() []envVar {
	return []envVar{
		{Name: "BACKEND_URL", Group: groupBackend, Unset: "unset: the mock CRM", Flag: "backend-url", parse: setString(&x.BackendURL),
			Doc: "`http(s)://host[:port][/prefix]` of the CRM's JSON API (package [`crm`](../crm/doc.go))"},
		{Name: "BACKEND_TOKEN", Group: groupBackend, Unset: "unset", parse: setString(&x.BackendToken),
			Doc: "sent to the CRM as `Authorization: Bearer …`"},
		{Name: "BACKEND_REQUEST_TIMEOUT", Group: groupBackend, Default: durationDefault(crm.DefaultTimeout),
			parse: setPositive(&x.BackendRequestTimeout, "2s"),
			Doc:   "bound on one attempt of one CRM request; `BACKEND_TIMEOUT` bounds the whole load"},
		{Name: "BACKEND_ATTEMPTS", Group: groupBackend, Default: strconv.Itoa(crm.DefaultMaxAttempts),
			parse: func(v string) (err error) {
				if x.BackendAttempts, err = strconv.Atoi(v); err != nil || x.BackendAttempts < 1 || x.BackendAttempts > 10 {
					return fmt.Errorf("invalid attempt count %q (1 to 10; 1 means no retry)", v)
				}
				return nil
			},
			Doc: "attempts of one CRM GET, the first included (1: no retry); retried on connection errors, timeouts, 429 and 5xx, with backoff, never past `BACKEND_TIMEOUT`"},
		{Name: "WEBHOOK_SECRET", Group: groupBackend, Unset: "unset: no webhook (404)", parse: setString(&x.WebhookSecret),
			Doc: "shared secret of `POST /internal/profile-changed`, by which the CRM says a user's data changed; at least 16 bytes"},
		{Name: "LOG_LEVEL", Group: groupObserve, Default: "info",
			parse: func(v string) error {
				if err := x.LogLevel.UnmarshalText([]byte(v)); err != nil {
					return fmt.Errorf("invalid level %q (debug, info, warn or error)", v)
				}
				return nil
			},
			Doc: "`debug`, `info`, `warn` or `error`; JSON lines on stderr (text at a terminal)"},
		{Name: "PPROF", Group: groupObserve, Default: "false", Flag: "pprof", BoolFlag: true, parse: setBool(&x.Pprof),
			Doc: "serve `net/http/pprof` on `PPROF_ADDR`, never on `ADDR`"},
		{Name: "PPROF_ADDR", Group: groupObserve, Default: defaultPprofAddr, Flag: "pprof-addr", parse: setString(&x.PprofAddr),
			Doc: "pprof listen address; must be a loopback address"},
	}
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
