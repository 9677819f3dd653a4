package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"
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

// defaultShutdownTimeout bounds draining in-flight requests on SIGTERM.
const defaultShutdownTimeout = 15 * time.Second

// loadConfig fills a Config from the defaults in the registry
// (configVars), then the environment, then flags, and checks it. It never
// exits: the caller prints the one-line error, which names every bad
// variable at once.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	cfg := Config{ShutdownTimeout: defaultShutdownTimeout}
	// The parsers write into cfg: it must not be copied until they are done.
	vars := cfg.configVars()
	errs := applyDefaults(vars)
	set := map[string]bool{}
	for _, v := range vars {
		if s := getenv(v.Name); s != "" {
			set[v.Name] = true
			if err := v.parse(s); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", v.Name, err))
			}
		}
	}
	fs := newFlagSet(vars, set)
	if err := fs.Parse(args); err != nil {
		return cfg, fmt.Errorf("flags: %w", err)
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	errs = append(errs, cfg.check(set)...)
	return cfg, errors.Join(errs...)
}

// applyDefaults parses every variable's default: the default the docs show
// is, by construction, the one in effect.
func applyDefaults(vars []envVar) []error {
	var errs []error
	for _, v := range vars {
		if v.Default == "" {
			continue
		}
		if err := v.parse(v.Default); err != nil {
			errs = append(errs, fmt.Errorf("%s: default %q: %w", v.Name, v.Default, err))
		}
	}
	return errs
}

// newFlagSet has a flag for every variable that has one; a flag overrides
// the environment. set records the variables given.
func newFlagSet(vars []envVar, set map[string]bool) *flag.FlagSet {
	fs := flag.NewFlagSet("profilecache", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, v := range vars {
		if v.Flag == "" {
			continue
		}
		parse := func(s string) error { set[v.Name] = true; return v.parse(s) }
		if v.BoolFlag {
			fs.BoolFunc(v.Flag, "env "+v.Name, parse)
		} else {
			fs.Func(v.Flag, "env "+v.Name, parse)
		}
	}
	return fs
}

// check runs once every variable is parsed: the rules that tie several
// together. set holds the variables given in the environment or flags.
func (c *Config) check(set map[string]bool) []error {
	errs := c.checkDurations(set)
	errs = append(errs, c.checkLogin()...)
	if c.RedisSentinelPassword != "" && !hasMasterSet(c.RedisURL) {
		errs = append(errs, errors.New("REDIS_SENTINEL_PASSWORD is set, but REDIS_URL names no sentinels (?master_set=<name>)"))
	}
	errs = append(errs, c.extConfig.check()...)
	errs = append(errs, c.eventsConfig.check()...)
	return errs
}

func (c *Config) checkDurations(set map[string]bool) []error {
	var errs []error
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"REDIS_TIMEOUT", c.RedisTimeout}, {"BACKEND_TIMEOUT", c.BackendTimeout},
		{"TOKEN_TTL", c.TokenTTL}, {"SESSION_MAX_AGE", c.SessionMaxAge}, {"PROFILE_TTL", c.ProfileTTL},
		{"READ_TIMEOUT", c.ReadTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", p.name, p.d))
		}
	}
	if c.BackendLatency < 0 {
		errs = append(errs, fmt.Errorf("BACKEND_LATENCY: must not be negative, got %s", c.BackendLatency))
	}
	if c.RefreshCooldown < 0 {
		errs = append(errs, fmt.Errorf("REFRESH_COOLDOWN: must not be negative (0 disables it), got %s", c.RefreshCooldown))
	}
	if c.ProfileTTL <= c.TokenTTL {
		errs = append(errs, fmt.Errorf("PROFILE_TTL (%s) must be longer than TOKEN_TTL (%s)", c.ProfileTTL, c.TokenTTL))
	}
	if c.SessionMaxAge < c.TokenTTL {
		errs = append(errs, fmt.Errorf("SESSION_MAX_AGE (%s) must not be shorter than TOKEN_TTL (%s)", c.SessionMaxAge, c.TokenTTL))
	}
	if !set["WRITE_TIMEOUT"] {
		c.WriteTimeout = writeTimeoutFor(c.BackendTimeout)
	} else if floor := longestRequest(c.BackendTimeout); c.WriteTimeout <= floor {
		errs = append(errs, fmt.Errorf("WRITE_TIMEOUT (%s) must be longer than 2 × BACKEND_TIMEOUT + 2s (%s): a login that loads a profile takes that long", c.WriteTimeout, floor))
	}
	return errs
}

func (c *Config) checkLogin() []error {
	var errs []error
	for _, l := range []struct {
		name  string
		rate  float64
		burst int
	}{{"LOGIN_BURST/LOGIN_RATE", c.LoginRate, c.LoginBurst}, {"LOGIN_ACCOUNT_BURST/LOGIN_ACCOUNT_RATE", c.LoginAccountRate, c.LoginAccountBurst}} {
		// A budget that takes longer than this to refill is a typo.
		if float64(l.burst)/l.rate > maxBudget.Seconds() {
			errs = append(errs, fmt.Errorf("%s: a full budget takes %.0fs to refill, more than %s", l.name, float64(l.burst)/l.rate, maxBudget))
		}
	}
	return errs
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
