package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/profilecache/profilecache/redisrepo"
)

// Config is everything the service reads from its environment and flags.
type Config struct {
	Addr            string
	RedisURL        string
	RedisTimeout    time.Duration
	Secret          []byte
	SecretGenerated bool
	PreviousSecret  []byte
	CookieSecure    bool
	BackendLatency  time.Duration
	BackendTimeout  time.Duration
	TokenTTL        time.Duration
	SessionMaxAge   time.Duration
	ProfileTTL      time.Duration
	// LoginRate/LoginBurst: login attempts per client address (an IPv6
	// /64); LoginAccountRate/LoginAccountBurst: failed logins per account.
	// Budgets live in Redis, shared by every instance.
	LoginRate         float64
	LoginBurst        int
	LoginAccountRate  float64
	LoginAccountBurst int
	// RefreshCooldown: POST /api/me/refresh of a profile loaded less than
	// this long ago answers 429 (REFRESH_COOLDOWN; 0 disables).
	RefreshCooldown time.Duration
	// MaxSessions caps one user's sessions (MAX_SESSIONS_PER_USER);
	// SessionDataMaxBytes is one session's data budget
	// (SESSION_DATA_MAX_BYTES). Together they bound a user's Redis memory
	// (docs/limits.md).
	MaxSessions         int
	SessionDataMaxBytes int
	ShutdownTimeout     time.Duration
	// ReadTimeout bounds reading one whole request, body included
	// (READ_TIMEOUT): a client that trickles its body is cut off.
	// WriteTimeout bounds one request from its headers to the end of the
	// answer (WRITE_TIMEOUT); by default 2 × BACKEND_TIMEOUT + 10s, longer
	// than the slowest legitimate request (writeTimeoutFor).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// TrustedProxies may set X-Forwarded-For and X-Forwarded-Proto
	// (TRUSTED_PROXIES); empty: those headers are ignored.
	TrustedProxies []*net.IPNet

	// RedisWaitReplicas: a login returns once this many replicas confirm
	// its session, or as many as its master has online (REDIS_WAIT_REPLICAS;
	// 0, the default, does not wait; redisrepo/replicas.go).
	RedisWaitReplicas int
	// RedisSentinelPassword authenticates to the sentinels of a REDIS_URL
	// with master_set (REDIS_SENTINEL_PASSWORD); the URL's password is the
	// master's.
	RedisSentinelPassword string
	// The real backend, its webhook, pprof and the log level: config_ext.go.
	extConfig
	// The event stream and its webhook: events.go.
	eventsConfig
	// PROFILE_FRESH and PROFILE_STALE_MAX: config_fresh.go.
	freshConfig
}

const minSecretLen = 32

// Login rate bounds: above maxRate per second is no limit; a budget that
// takes more than maxBudget to refill is surely a mistake.
const (
	maxRate   = 1_000_000
	maxBudget = 366 * 24 * time.Hour
)

// loadConfig fills a Config from defaults, then the environment, then flags,
// and checks it. It never exits: the caller prints the one-line error.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	cfg := Config{
		Addr:              "127.0.0.1:8080",
		RedisTimeout:      2 * time.Second,
		BackendTimeout:    10 * time.Second,
		TokenTTL:          20 * time.Minute,
		SessionMaxAge:     12 * time.Hour,
		ProfileTTL:        24 * time.Hour,
		LoginRate:         1,
		LoginBurst:        20,
		LoginAccountRate:  0.1,
		LoginAccountBurst: 10,
		RefreshCooldown:   10 * time.Second,
		ShutdownTimeout:   15 * time.Second,
		ReadTimeout:       30 * time.Second,

		MaxSessions:         redisrepo.DefaultMaxSessions,
		SessionDataMaxBytes: redisrepo.DefaultMaxDataBytes,
	}
	var errs []error
	env := func(name string, parse func(string) error) {
		if v := getenv(name); v != "" {
			if err := parse(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	str := func(dst *string) func(string) error { return func(v string) error { *dst = v; return nil } }
	dur := func(dst *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("invalid duration %q (use e.g. 250ms, 20m, 12h)", v)
			}
			*dst = d
			return nil
		}
	}
	boolean := func(dst *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("invalid boolean %q", v)
			}
			*dst = b
			return nil
		}
	}
	var secret, previous string
	env("ADDR", str(&cfg.Addr))
	env("REDIS_URL", str(&cfg.RedisURL))
	env("REDIS_TIMEOUT", dur(&cfg.RedisTimeout))
	env("REDIS_SENTINEL_PASSWORD", str(&cfg.RedisSentinelPassword))
	env("REDIS_WAIT_REPLICAS", func(v string) (err error) {
		cfg.RedisWaitReplicas, err = strconv.Atoi(v)
		if err != nil || cfg.RedisWaitReplicas < 0 {
			return fmt.Errorf("invalid replica count %q (a whole number >= 0; 0 does not wait)", v)
		}
		return nil
	})
	env("SESSION_SECRET", str(&secret))
	env("SESSION_SECRET_PREVIOUS", str(&previous))
	env("COOKIE_SECURE", boolean(&cfg.CookieSecure))
	env("BACKEND_LATENCY", dur(&cfg.BackendLatency))
	env("BACKEND_TIMEOUT", dur(&cfg.BackendTimeout))
	env("TOKEN_TTL", dur(&cfg.TokenTTL))
	env("SESSION_MAX_AGE", dur(&cfg.SessionMaxAge))
	env("PROFILE_TTL", dur(&cfg.ProfileTTL))
	cfg.freshConfig.register(env)
	env("READ_TIMEOUT", dur(&cfg.ReadTimeout))
	writeTimeoutSet := false
	env("WRITE_TIMEOUT", func(v string) error { writeTimeoutSet = true; return dur(&cfg.WriteTimeout)(v) })
	// Rates are attempts per second, e.g. 0.1 for one every ten seconds.
	rate := func(dst *float64) func(string) error {
		return func(v string) error {
			r, err := strconv.ParseFloat(v, 64)
			if err != nil || !(r > 0) || r > maxRate {
				return fmt.Errorf("invalid rate %q (attempts per second, > 0 and <= %g)", v, float64(maxRate))
			}
			*dst = r
			return nil
		}
	}
	burst := func(dst *int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("invalid burst %q (a whole number >= 1)", v)
			}
			*dst = n
			return nil
		}
	}
	env("LOGIN_RATE", rate(&cfg.LoginRate))
	env("LOGIN_ACCOUNT_RATE", rate(&cfg.LoginAccountRate))
	env("LOGIN_ACCOUNT_BURST", burst(&cfg.LoginAccountBurst))
	env("REFRESH_COOLDOWN", dur(&cfg.RefreshCooldown))
	env("TRUSTED_PROXIES", func(v string) (err error) {
		cfg.TrustedProxies, err = parseTrustedProxies(v)
		return err
	})
	env("LOGIN_BURST", burst(&cfg.LoginBurst))
	env("MAX_SESSIONS_PER_USER", func(v string) (err error) {
		cfg.MaxSessions, err = strconv.Atoi(v)
		if err != nil || cfg.MaxSessions < 1 {
			return fmt.Errorf("invalid session count %q (a whole number >= 1)", v)
		}
		return nil
	})
	env("SESSION_DATA_MAX_BYTES", func(v string) (err error) {
		cfg.SessionDataMaxBytes, err = strconv.Atoi(v)
		if err != nil || cfg.SessionDataMaxBytes < 1 {
			return fmt.Errorf("invalid byte count %q (a whole number >= 1)", v)
		}
		return nil
	})

	fs := flag.NewFlagSet("profilecache", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.extConfig.register(env, fs)
	cfg.eventsConfig.register(env)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (env ADDR)")
	fs.StringVar(&cfg.RedisURL, "redis-url", cfg.RedisURL, "Redis URL; empty starts an embedded in-memory Redis (env REDIS_URL)")
	fs.DurationVar(&cfg.BackendLatency, "backend-latency", cfg.BackendLatency, "mock CRM latency (env BACKEND_LATENCY)")
	if err := fs.Parse(args); err != nil {
		return cfg, fmt.Errorf("flags: %w", err)
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}

	switch {
	case secret == "":
		// Checked below, after the other errors: a random key is not an error.
	case len(secret) < minSecretLen:
		errs = append(errs, fmt.Errorf("SESSION_SECRET: must be at least %d bytes, got %d", minSecretLen, len(secret)))
	default:
		cfg.Secret = []byte(secret)
	}
	if previous != "" {
		if len(previous) < minSecretLen {
			errs = append(errs, fmt.Errorf("SESSION_SECRET_PREVIOUS: must be at least %d bytes, got %d", minSecretLen, len(previous)))
		}
		cfg.PreviousSecret = []byte(previous)
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"REDIS_TIMEOUT", cfg.RedisTimeout}, {"BACKEND_TIMEOUT", cfg.BackendTimeout},
		{"TOKEN_TTL", cfg.TokenTTL}, {"SESSION_MAX_AGE", cfg.SessionMaxAge}, {"PROFILE_TTL", cfg.ProfileTTL},
		{"READ_TIMEOUT", cfg.ReadTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", p.name, p.d))
		}
	}
	if cfg.RedisSentinelPassword != "" && !hasMasterSet(cfg.RedisURL) {
		errs = append(errs, errors.New("REDIS_SENTINEL_PASSWORD is set, but REDIS_URL names no sentinels (?master_set=<name>)"))
	}
	if cfg.BackendLatency < 0 {
		errs = append(errs, fmt.Errorf("BACKEND_LATENCY: must not be negative, got %s", cfg.BackendLatency))
	}
	if cfg.RefreshCooldown < 0 {
		errs = append(errs, fmt.Errorf("REFRESH_COOLDOWN: must not be negative (0 disables it), got %s", cfg.RefreshCooldown))
	}
	for _, l := range []struct {
		name  string
		rate  float64
		burst int
	}{{"LOGIN_BURST/LOGIN_RATE", cfg.LoginRate, cfg.LoginBurst}, {"LOGIN_ACCOUNT_BURST/LOGIN_ACCOUNT_RATE", cfg.LoginAccountRate, cfg.LoginAccountBurst}} {
		// A budget that takes longer than this to refill is a typo.
		if float64(l.burst)/l.rate > maxBudget.Seconds() {
			errs = append(errs, fmt.Errorf("%s: a full budget takes %.0fs to refill, more than %s", l.name, float64(l.burst)/l.rate, maxBudget))
		}
	}
	if cfg.ProfileTTL <= cfg.TokenTTL {
		errs = append(errs, fmt.Errorf("PROFILE_TTL (%s) must be longer than TOKEN_TTL (%s)", cfg.ProfileTTL, cfg.TokenTTL))
	}
	if cfg.SessionMaxAge < cfg.TokenTTL {
		errs = append(errs, fmt.Errorf("SESSION_MAX_AGE (%s) must not be shorter than TOKEN_TTL (%s)", cfg.SessionMaxAge, cfg.TokenTTL))
	}
	if !writeTimeoutSet {
		cfg.WriteTimeout = writeTimeoutFor(cfg.BackendTimeout)
	} else if floor := longestRequest(cfg.BackendTimeout); cfg.WriteTimeout <= floor {
		errs = append(errs, fmt.Errorf("WRITE_TIMEOUT (%s) must be longer than 2 × BACKEND_TIMEOUT + 2s (%s): a login that loads a profile takes that long", cfg.WriteTimeout, floor))
	}
	errs = append(errs, cfg.extConfig.check()...)
	errs = append(errs, cfg.eventsConfig.check()...)
	return cfg, errors.Join(errs...)
}

// longestRequest is how long a legitimate request may take: a login checks
// the password at the CRM (BACKEND_TIMEOUT) and then loads the profile
// (BACKEND_TIMEOUT) or waits for another instance's load, which gives up
// BACKEND_TIMEOUT + 2s later.
func longestRequest(backendTimeout time.Duration) time.Duration {
	return 2*backendTimeout + 2*time.Second
}

// writeTimeoutFor is WRITE_TIMEOUT's default: longestRequest plus room
// for the Redis calls around it (each bounded by REDIS_TIMEOUT) and for
// writing the answer. 30s with the default BACKEND_TIMEOUT.
func writeTimeoutFor(backendTimeout time.Duration) time.Duration {
	return 2*backendTimeout + 10*time.Second
}

// hasMasterSet reports whether a Redis URL names sentinels (master_set).
func hasMasterSet(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Query().Get("master_set") != ""
}

// redactURL hides a password in a Redis URL, so the config can be logged.
func redactURL(raw string) string {
	if raw == "" {
		return "(embedded)"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// fenceTTL is how long a revocation fence lives (redisrepo/fence.go): longer
// than any login or request that may have begun before the revocation. A
// login is an authentication and a reload (each bounded by BACKEND_TIMEOUT,
// the reload's wait by 2s more) plus a few Redis calls; a request is at most
// one reload plus a few Redis calls.
func (c Config) fenceTTL() time.Duration {
	return 2*c.BackendTimeout + 4*c.RedisTimeout + 4*time.Second
}
