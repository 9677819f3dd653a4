package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/profile"
)

// Limiter is one family of rate-limit budgets, a budget per key, shared by
// every instance of the service (a limit in one process's memory would
// multiply with the instances). Implemented by *redisrepo.Limiter.
type Limiter interface {
	// Allow takes one attempt from key's budget. When the budget is spent
	// it takes nothing and says how long until an attempt is allowed again.
	Allow(ctx context.Context, key string) (allowed bool, retryAfter time.Duration, err error)
	// Refund gives back one attempt that Allow took.
	Refund(ctx context.Context, key string) error
}

// errLoginThrottled: too many login attempts from this client address or
// for this account. The error is a *throttledError. Maps to 429.
var errLoginThrottled = errors.New("too many login attempts")

// throttledError refuses a login attempt and says when to try again.
type throttledError struct {
	budget string // "address" or "account", for the log
	wait   time.Duration
}

func (e *throttledError) Error() string {
	return fmt.Sprintf("%v: %s budget spent, retry in %v", errLoginThrottled, e.budget, e.wait)
}

func (e *throttledError) Is(target error) bool { return target == errLoginThrottled }

// RetryAfter is sent as the Retry-After header (handleError).
func (e *throttledError) RetryAfter() time.Duration { return e.wait }

// take draws one attempt from key's budget in l: nil, a *throttledError, or
// (the limiter's store not answering) ErrUnavailable. Login needs Redis for
// the session anyway, so a limiter that cannot decide fails closed: 503.
func take(ctx context.Context, l Limiter, budget, key string) error {
	ok, wait, err := l.Allow(ctx, key)
	if err != nil {
		return fmt.Errorf("web: login throttle (%s): %w: %w", budget, profile.ErrUnavailable, err)
	}
	if !ok {
		return &throttledError{budget: budget, wait: wait}
	}
	return nil
}

// loginRateLimit limits login attempts per client address, as the
// configured IPExtractor finds it (never a forgeable header by default).
// Every attempt counts, whatever its outcome; it runs before the body is
// read, so a throttled client costs one Redis call.
func (s *Server) loginRateLimit() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := take(c.Request().Context(), s.cfg.LoginByAddress, "address", addressKey(c.RealIP())); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// addressKey is the budget a client address draws from. An IPv4 address
// is its own budget. An IPv6 address shares one with its whole /64: a
// subscriber or host is routinely given a /64 or more and can use any
// address in it, so per-address budgets would be endless. IPv4-mapped IPv6
// (::ffff:a.b.c.d) is the IPv4 address. Anything that is not an address
// (the extractors always give one, so never in practice) shares a single
// budget: fail closed rather than give each such client its own.
func addressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "invalid"
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64) // cannot fail for an IPv6 address
	return p.String()
}

// accountKey is the budget of the account an email names. The email is
// trimmed and lowercased, as the CRM matches it, so that case variants of
// one account share its budget; it is hashed so that no email address is
// written to Redis, and so that any input (however long, whatever bytes)
// makes a short, brace-free key.
func accountKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:16])
}
