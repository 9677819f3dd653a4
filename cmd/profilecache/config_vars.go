package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/profilecache/profilecache/redisrepo"
)

// The configuration registry: every environment variable the service reads,
// with its default, its flag and one line of documentation. loadConfig walks
// it; docs/configuration.md is generated from it and checked against it
// (TestConfigurationDoc), so the two cannot drift.

// envVar is one environment variable.
type envVar struct {
	Name  string
	Group group
	// Default is parsed before the environment; "" means none, and Unset
	// says (in Markdown) what happens then.
	Default string
	Unset   string
	// Flag names the command-line flag that overrides the variable;
	// BoolFlag: it may be given without a value.
	Flag     string
	BoolFlag bool
	// Doc is the Markdown line in docs/configuration.md (links relative to
	// docs/).
	Doc   string
	parse func(string) error
}

// group is the section of docs/configuration.md a variable is listed in.
type group int

const (
	groupServer group = iota
	groupRedis
	groupSessions
	groupProfile
	groupBackend
	groupLimits
	groupEvents
	groupObserve
	numGroups
)

var groupTitles = [numGroups]string{
	groupServer:   "Server",
	groupRedis:    "Redis",
	groupSessions: "Sessions",
	groupProfile:  "Profile cache and freshness",
	groupBackend:  "Backend (CRM)",
	groupLimits:   "Limits",
	groupEvents:   "Events",
	groupObserve:  "Logging, metrics and profiling",
}

// configVars is the registry, its parsers bound to c's fields.
func (c *Config) configVars() []envVar {
	vars := c.serverVars()
	vars = append(vars, c.redisVars()...)
	vars = append(vars, c.sessionVars()...)
	vars = append(vars, c.profileVars()...)
	vars = append(vars, c.freshConfig.vars()...)
	vars = append(vars, c.backendVars()...)
	vars = append(vars, c.extConfig.vars()...)
	vars = append(vars, c.limitVars()...)
	vars = append(vars, c.eventsConfig.vars()...)
	return vars
}

func (c *Config) serverVars() []envVar {
	return []envVar{
		{Name: "ADDR", Group: groupServer, Default: "127.0.0.1:8080", Flag: "addr", parse: setString(&c.Addr),
			Doc: "listen address"},
		{Name: "READ_TIMEOUT", Group: groupServer, Default: "30s", parse: setDuration(&c.ReadTimeout),
			Doc: "bound on reading one whole request, body included: a client that trickles its body is cut off"},
		{Name: "WRITE_TIMEOUT", Group: groupServer, Unset: "2 × `BACKEND_TIMEOUT` + 10s", parse: setDuration(&c.WriteTimeout),
			Doc: "bound on one request from its headers to the end of the answer; must be longer than 2 × `BACKEND_TIMEOUT` + 2s (a login that loads a profile)"},
		{Name: "TRUSTED_PROXIES", Group: groupServer, Unset: "unset: `X-Forwarded-*` ignored",
			parse: func(v string) (err error) { c.TrustedProxies, err = parseTrustedProxies(v); return err },
			Doc:   "comma-separated IPs or CIDRs of reverse proxies whose `X-Forwarded-For`/`-Proto` are believed (client address for logs and login limits, HTTPS for `Secure` cookies)"},
	}
}

func (c *Config) redisVars() []envVar {
	return []envVar{
		{Name: "REDIS_URL", Group: groupRedis, Flag: "redis-url", parse: setString(&c.RedisURL),
			Unset: "unset: embedded in-memory Redis (data lost on exit, logged loudly)",
			Doc:   "`redis://[user:pass@]host:port/db`, `rediss://` for TLS, several seeds as `redis://h1:p1?addr=h2:p2`; a Redis Cluster is detected, not configured; Redis Sentinel: the sentinels plus `&master_set=<name>` ([scale.md](scale.md#redis-sentinel))"},
		{Name: "REDIS_TIMEOUT", Group: groupRedis, Default: "2s", parse: setDuration(&c.RedisTimeout),
			Doc: "bound on every Redis call (and on dialing): with Redis down or stalled a request gets 503 instead of waiting"},
		{Name: "REDIS_SENTINEL_PASSWORD", Group: groupRedis, Unset: "unset", parse: setString(&c.RedisSentinelPassword),
			Doc: "password of the sentinels named in `REDIS_URL` (the URL's password is the master's)"},
		{Name: "REDIS_WAIT_REPLICAS", Group: groupRedis, Default: "0", parse: setInt(&c.RedisWaitReplicas, 0, "replica count", "; 0 does not wait"),
			Doc: "a login waits (within `REDIS_TIMEOUT`) until this many replicas of its master confirm the session, so that a failover right after it does not lose it ([scale.md](scale.md#redis-cluster-failover))"},
	}
}

func (c *Config) sessionVars() []envVar {
	return []envVar{
		{Name: "SESSION_SECRET", Group: groupSessions, Unset: "unset: random per process, with a warning",
			parse: setSecret(&c.Secret),
			Doc:   "JWT signing key, at least 32 bytes; every instance needs the same (CSRF tokens use a key derived from it)"},
		{Name: "SESSION_SECRET_PREVIOUS", Group: groupSessions, Unset: "unset", parse: setSecret(&c.PreviousSecret),
			Doc: "an old key still accepted for verification, for rotation without logging everyone out"},
		{Name: "COOKIE_SECURE", Group: groupSessions, Default: "false", parse: setBool(&c.CookieSecure),
			Doc: "mark the session and CSRF cookies `Secure` on every response; with `TRUSTED_PROXIES` set, they are `Secure` for HTTPS requests anyway. A `Secure` cookie is named `__Host-pc_session` / `__Host-pc_csrf`, and on such requests only that name is read ([limits.md](limits.md#csrf-and-cookies))"},
		{Name: "TOKEN_TTL", Group: groupSessions, Default: "20m", parse: setDuration(&c.TokenTTL),
			Doc: "idle timeout, sliding"},
		{Name: "SESSION_MAX_AGE", Group: groupSessions, Default: "12h", parse: setDuration(&c.SessionMaxAge),
			Doc: "absolute timeout, however active the session; not shorter than `TOKEN_TTL`"},
	}
}

func (c *Config) profileVars() []envVar {
	return []envVar{
		{Name: "PROFILE_TTL", Group: groupProfile, Default: "24h", parse: setDuration(&c.ProfileTTL),
			Doc: "cached profile lifetime, renewed when read; must be longer than `TOKEN_TTL`"},
	}
}

func (c *Config) backendVars() []envVar {
	return []envVar{
		{Name: "BACKEND_TIMEOUT", Group: groupBackend, Default: "10s", parse: setDuration(&c.BackendTimeout),
			Doc: "bound on one full profile load; waiters give up with 503 a little later"},
		{Name: "BACKEND_LATENCY", Group: groupBackend, Default: "0", Flag: "backend-latency", parse: setDuration(&c.BackendLatency),
			Doc: "the mock CRM answers this slowly (demo and benchmarks)"},
	}
}

func (c *Config) limitVars() []envVar {
	return []envVar{
		{Name: "LOGIN_RATE", Group: groupLimits, Default: "1", parse: setRate(&c.LoginRate),
			Doc: "login attempts per second per client address (IPv6: per /64), shared by every instance through Redis"},
		{Name: "LOGIN_BURST", Group: groupLimits, Default: "20", parse: setInt(&c.LoginBurst, 1, "burst", ""),
			Doc: "burst of `LOGIN_RATE`"},
		{Name: "LOGIN_ACCOUNT_RATE", Group: groupLimits, Default: "0.1", parse: setRate(&c.LoginAccountRate),
			Doc: "failed logins per second per account, from any address"},
		{Name: "LOGIN_ACCOUNT_BURST", Group: groupLimits, Default: "10", parse: setInt(&c.LoginAccountBurst, 1, "burst", ""),
			Doc: "burst of `LOGIN_ACCOUNT_RATE`"},
		{Name: "REFRESH_COOLDOWN", Group: groupLimits, Default: "10s", parse: setDuration(&c.RefreshCooldown),
			Doc: "`POST /api/me/refresh` of a profile younger than this answers 429 with `Retry-After`; `0` disables"},
		{Name: "MAX_SESSIONS_PER_USER", Group: groupLimits, Default: strconv.Itoa(redisrepo.DefaultMaxSessions),
			parse: setInt(&c.MaxSessions, 1, "session count", ""),
			Doc:   "a login beyond it ends the user's least recently seen session ([limits.md](limits.md))"},
		{Name: "SESSION_DATA_MAX_BYTES", Group: groupLimits, Default: strconv.Itoa(redisrepo.DefaultMaxDataBytes),
			parse: setInt(&c.SessionDataMaxBytes, 1, "byte count", ""),
			Doc:   "one session's data, keys plus values; beyond it 413"},
	}
}

// Parsers: each sets its destination or says what is wrong with the value
// (loadConfig adds the variable's name).

func setString(dst *string) func(string) error {
	return func(v string) error { *dst = v; return nil }
}

func setDuration(dst *time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("invalid duration %q (use e.g. 250ms, 20m, 12h)", v)
		}
		*dst = d
		return nil
	}
}

// setPositive is setDuration for durations that must be > 0; example is
// a sensible value, for the error.
func setPositive(dst *time.Duration, example string) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("invalid duration %q (a positive one, e.g. %s)", v, example)
		}
		*dst = d
		return nil
	}
}

func setBool(dst *bool) func(string) error {
	return func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("invalid boolean %q", v)
		}
		*dst = b
		return nil
	}
}

// setInt takes a whole number >= least; what names it in the error, hint
// adds to it.
func setInt(dst *int, least int, what, hint string) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < least {
			return fmt.Errorf("invalid %s %q (a whole number >= %d%s)", what, v, least, hint)
		}
		*dst = n
		return nil
	}
}

// setRate takes attempts per second, e.g. 0.1 for one every ten seconds.
func setRate(dst *float64) func(string) error {
	return func(v string) error {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r > 0) || r > maxRate {
			return fmt.Errorf("invalid rate %q (attempts per second, > 0 and <= %g)", v, float64(maxRate))
		}
		*dst = r
		return nil
	}
}

func setSecret(dst *[]byte) func(string) error {
	return func(v string) error {
		if len(v) < minSecretLen {
			return fmt.Errorf("must be at least %d bytes, got %d", minSecretLen, len(v))
		}
		*dst = []byte(v)
		return nil
	}
}

// durationDefault writes a default duration the way people do: 24h, 5m,
// 30s rather than 24h0m0s.
func durationDefault(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
