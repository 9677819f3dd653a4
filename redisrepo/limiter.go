package redisrepo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// LimiterOptions configure a Limiter: one family of budgets (say, login
// attempts per client address), each key its own budget.
type LimiterOptions struct {
	// Prefix starts every key. Default DefaultPrefix ("pc"). No braces.
	Prefix string
	// Name tells this limiter's budgets from other limiters': a budget's
	// key is <prefix>:rl:{<name>:<key>}. Required; no braces.
	Name string
	// Rate is how many attempts per second a budget regains (0.1: one
	// every ten seconds). Required, > 0.
	Rate float64
	// Burst is how many attempts a full budget allows at once. Required, >= 1.
	Burst int
}

// Limiter is a rate limit whose budgets live in Redis, so that every
// instance on the same Redis draws from the same budget. It is GCRA, the
// generic cell rate algorithm, in one Lua call per decision (gcraScript):
// the budget of a key is a single value, the time at which it would be
// whole again, written only when an attempt is allowed. A budget that is
// whole has no key; a spent one expires when it would be whole again.
type Limiter struct {
	client rueidis.Client
	prefix string // "pc:rl:{<name>:"
	// interval is the emission interval, 1/Rate, in microseconds: how much
	// of the budget one attempt takes, and how soon it comes back.
	interval string
	burst    string
}

// maxBudget bounds Burst/Rate: the script computes in float64 microseconds,
// exact up to 2^53; now (about 2^50.6 in this century) plus the budget must
// stay below that.
const maxBudget = 20 * 365 * 24 * time.Hour

// NewLimiter returns a limiter on client, or an error for options it
// cannot honour.
func NewLimiter(client rueidis.Client, opts LimiterOptions) (*Limiter, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	switch {
	case strings.ContainsAny(opts.Prefix, "{}"):
		return nil, fmt.Errorf("redisrepo: limiter: prefix %q must not contain braces", opts.Prefix)
	case opts.Name == "" || strings.ContainsAny(opts.Name, "{}"):
		return nil, fmt.Errorf("redisrepo: limiter: name %q must be set and brace-free", opts.Name)
	case !(opts.Rate > 0) || math.IsInf(opts.Rate, 0):
		return nil, fmt.Errorf("redisrepo: limiter %s: rate %v must be a positive number", opts.Name, opts.Rate)
	case opts.Burst < 1:
		return nil, fmt.Errorf("redisrepo: limiter %s: burst %d must be at least 1", opts.Name, opts.Burst)
	}
	interval := math.Round(1e6 / opts.Rate)
	if interval < 1 {
		return nil, fmt.Errorf("redisrepo: limiter %s: rate %v is above one attempt per microsecond", opts.Name, opts.Rate)
	}
	if interval*float64(opts.Burst) > float64(maxBudget.Microseconds()) {
		return nil, fmt.Errorf("redisrepo: limiter %s: burst/rate is longer than %v", opts.Name, maxBudget)
	}
	return &Limiter{
		client:   client,
		prefix:   opts.Prefix + ":rl:{" + opts.Name + ":",
		interval: strconv.FormatFloat(interval, 'f', 0, 64),
		burst:    strconv.Itoa(opts.Burst),
	}, nil
}

// Allow takes one attempt from key's budget. When the budget is spent it
// takes nothing and says how long until the next attempt would be allowed.
// Errors wrap profile.ErrUnavailable: the caller decides whether to fail
// open or closed.
func (l *Limiter) Allow(ctx context.Context, key string) (allowed bool, retryAfter time.Duration, err error) {
	ok, wait, err := l.run(ctx, key, "take")
	if err != nil {
		return false, 0, fmt.Errorf("redisrepo: limiter allow: %w", err)
	}
	return ok, wait, nil
}

// Refund gives back one attempt that Allow took, say for an attempt that
// turned out not to count (a successful login). A budget never grows past
// whole.
func (l *Limiter) Refund(ctx context.Context, key string) error {
	if _, _, err := l.run(ctx, key, "refund"); err != nil {
		return fmt.Errorf("redisrepo: limiter refund: %w", err)
	}
	return nil
}

func (l *Limiter) run(ctx context.Context, key, op string) (bool, time.Duration, error) {
	if key == "" || strings.ContainsAny(key, "{}") {
		// The key goes inside the hash tag: a brace would move the tag.
		return false, 0, fmt.Errorf("invalid key %q", key)
	}
	arr, err := gcraScript.Exec(ctx, l.client, []string{l.prefix + key + "}"}, []string{l.interval, l.burst, op}).ToArray()
	if err != nil {
		return false, 0, unavailable(err)
	}
	if len(arr) != 2 {
		return false, 0, unavailable(fmt.Errorf("unexpected reply of %d elements", len(arr)))
	}
	ok, err1 := arr[0].AsInt64()
	waitUS, err2 := arr[1].AsInt64()
	if err := errors.Join(err1, err2); err != nil {
		return false, 0, unavailable(err)
	}
	return ok == 1, time.Duration(waitUS) * time.Microsecond, nil
}

// gcraScript decides one attempt against one budget. Credit: it follows the
// GCRA script (allowN) of github.com/go-redis/redis_rate, itself after
// github.com/rwz/redis-gcra by Pavel Pravosud. The key holds the budget's
// theoretical arrival time (TAT); an attempt moves it one emission interval
// later and is allowed while the TAT stays within burst intervals of now.
// Differences: times are whole microseconds (exact in a Lua number, so no
// epoch shift is needed), the cost is always one, and a "refund" moves the
// TAT back by one interval.
//
// The clock is Redis's TIME, one clock for every instance. Redis 5 and
// later replicate a script's effects, not the script, so calling TIME is
// safe; older servers need redis.replicate_commands() first.
//
// Numbers are passed to redis.call as strings formatted with %d: Redis
// would format a Lua number with %.14g and round a 16-digit TAT.
//
// KEYS[1] the budget. ARGV[1] emission interval (µs), ARGV[2] burst,
// ARGV[3] "take" or "refund".
// Returns {1, 0} allowed (or refunded), {0, µs until an attempt would be
// allowed} refused.
var gcraScript = rueidis.NewLuaScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '')
if not tat or tat < now then
  tat = now
end
local function store(v)
  if v <= now then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], string.format('%d', v), 'PX', string.format('%d', math.ceil((v - now) / 1000)))
  end
end
if ARGV[3] == 'refund' then
  store(tat - interval)
  return {1, 0}
end
local new_tat = tat + interval
local wait = new_tat - interval * tonumber(ARGV[2]) - now
if wait > 0 then
  return {0, wait}
end
store(new_tat)
return {1, 0}
`)
